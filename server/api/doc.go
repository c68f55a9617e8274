// Package api is the operator HTTP/JSON API under /api/v1, documented by the OpenAPI 3 document it serves at
// /api/v1/openapi.json. Every call but sign-in needs a caller (auth.go): the admin bearer token (an admin,
// compared in constant time), an API key (hfk_…, with its role) or a session cookie from POST /api/v1/session
// (writes with it also need the session's X-CSRF-Token and a same-origin Origin). A route needs a role by its
// pattern: reads a viewer, writes an operator, users, API keys, enrollment and command keys an admin. JSON is
// snake_case; errors are {"error":{"code","message"}}. Handlers only parse, ask the actors once through
// Backend, and shape the reply.
//
//	GET  /api/v1/miners[?state&q&limit&offset] ─▶ FleetView (one request for the whole page; with
//	     model, node, site, sort or facets the API filters, sorts and pages every match)
//	GET  /api/v1/miners/{id}                   ─▶ FleetView
//	POST /api/v1/commands                       ─▶ Org (validate, record, route) → 202 {command_id}
//	GET  /api/v1/commands/{id}                  ─▶ CommandTracker (or the store when finished)
//	     [?summary=1 | ?results_after&limit&status] the counts only, or a page of results (commands_query.go)
//	GET  /api/v1/nodes                          ─▶ FleetView
//	GET  /api/v1/series, /api/v1/fleet/totals   ─▶ History (rollups) + FleetView (live)
//	POST /api/v1/session, /users, /api-keys      ─▶ users.Service
package api
