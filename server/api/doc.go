// Package api is the operator HTTP/JSON API under /api/v1, documented by the OpenAPI 3 document it serves at
// /api/v1/openapi.json. Every call needs the admin bearer token (compared in constant time); JSON is
// snake_case; errors are {"error":{"code","message"}}. Handlers only parse, ask the actors once through
// Backend, and shape the reply.
//
//	GET  /api/v1/miners[?state&q&limit&offset] ─▶ FleetView (one request for the whole page)
//	GET  /api/v1/miners/{id}                   ─▶ FleetView
//	POST /api/v1/commands                       ─▶ Org (validate, record, route) → 202 {command_id}
//	GET  /api/v1/commands/{id}                  ─▶ CommandTracker (or the store when finished)
//	GET  /api/v1/nodes                          ─▶ FleetView
package api
