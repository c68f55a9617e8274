// Package ui is the operator web UI, embedded in the binary (plain JavaScript modules, no build step, no
// CDN). It signs in with a user name and password (a session cookie; writes carry the session's CSRF token
// in a header) and talks only to this origin's /api/v1. Pages (hash routes): overview (fleet totals, charts
// over time, sites → nodes → miners), miners (server-side paging, sort and filters; multi-select bulk
// actions with a progress view), miner detail (live values, charts, pools, errors, command history), nodes
// (enrollment by fingerprint, stream status, versions), pairs and leases, conflicts, discovery and pairing,
// curtailment, audit log, and users and API keys. Buttons a role may not use are hidden and the API refuses
// them anyway. Every server value is written with textContent or setAttribute, and a strict
// Content-Security-Policy forbids inline script, so miner-supplied strings cannot inject markup.
//
//	browser ─GET /, /ui/*.js, /ui/app.css──▶ Handler (embedded files)
//	        ─POST /api/v1/session──────────▶ cookie hashfleet_session + csrf_token (kept in memory only)
//	        ─GET /api/v1/miners?sort&state&model&node&site&q&offset&limit─▶ one page
//	        ─GET /api/v1/series, /api/v1/fleet/totals─▶ charts
//	        ─POST /api/v1/commands (X-CSRF-Token), GET /api/v1/commands/{id}?summary=1─▶ bulk progress
//	          (then ?status=failed,timeout&limit=200 once, for the miners that did not succeed)
package ui
