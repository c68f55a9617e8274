// Package users owns who may use the operator API and UI: users with a role (admin, operator, viewer) and a
// bcrypt password hash, API keys for automation (each with a role, the secret shown once and stored as a
// SHA-256 hash: it is 256 random bits, so a slow hash adds nothing), browser sessions with a CSRF token, and
// login rate limiting. Users and API keys live in the server's Badger under "users/"; sessions and login
// failures are kept in memory (a restart signs everyone out and forgets failures).
//
//	POST /api/v1/session ─▶ Service.Login ─▶ limiter.decide(state, now) ─▶ bcrypt compare ─▶ Session{token, csrf}
//	cookie hashfleet_session ─▶ Service.Session(token) ─▶ Principal{user, role, csrf}
//	Authorization: Bearer hfk_<id>_<secret> ─▶ Service.APIKey ─▶ Principal{key:<id>, role}
//
// Roles are ordered: a viewer reads; an operator also issues commands, scans, pairs and curtails; an admin
// also manages users, API keys, node enrollment and the org's command keys. The API decides which role a
// route needs (server/api/auth.go); this package only says who the caller is.
package users
