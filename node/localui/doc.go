// Package localui is the node's local HTTPS UI: staff on the site LAN run the site from the node itself when
// the cloud is unreachable (local-degraded mode), and always can.
//
//	browser / script ──HTTPS (self-signed cert, TLS 1.2+)──▶ Server
//	                                                          │ guard: security headers, body bound, refuse any
//	                                                          │        cloud credential (Authorization, X-Api-Key,
//	                                                          │        api_key=…), refuse cross-origin writes
//	                                                          │ login: argon2id credential (own 0600 file),
//	                                                          │        lockout per client and per user (LoginPolicy)
//	                                                          │ session cookie (__Host-, Secure, HttpOnly,
//	                                                          │        SameSite=Strict) + CSRF token on every POST
//	                                                          ▼
//	                                      Site (interface) ── the node: miners, link, local commands
//	                                                          └─ localuitest.Site: in-memory twin for tests
//
// Pages (server-rendered html/template, embedded, no external assets; app.js only selects all and refreshes
// live values through the JSON API):
//
//	GET  /login, POST /login, POST /logout
//	GET  /                  miner list: live telemetry, filter, select (all), bulk stop/start/reboot/power target
//	GET  /miners/{id}       one miner, with per-miner commands
//	POST /commands          submit a command (form)
//	GET  /commands          the local command log
//	GET  /curtailment, POST /curtailment   site curtailment start/stop
//	/api/local/…            the same for scripts (see api.go)
//
// Every page shows a banner saying whether the cloud link is up and since when.
//
// Files in Config.Dir (0700): local-ui.crt and local-ui.key (the self-signed certificate, made at first run),
// local-admin.json (SetLocalAdmin: user name and argon2id hash). The directory holds no cloud credential.
//
// Commands: the UI validates a request (LocalCommandRequest.Validate) and hands it to Site.Submit with the
// form's idempotency key (a fresh random key per page render, so a double click or a browser re-post runs
// once). The node stamps local_origin, an HLC timestamp (node/hlc), its lease epoch and the actor, persists the
// pb.LocalCommand, then runs it.
package localui
