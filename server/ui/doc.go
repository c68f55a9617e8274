// Package ui is the first operator page, embedded in the binary (no build step, no CDN): a token box (kept
// in sessionStorage, sent as Bearer), a live miner table polling /api/v1/miners every 2 s, and per-row
// reboot / stop / start buttons that show the command's status. Every server value is written with
// textContent, and a strict Content-Security-Policy forbids inline script, so miner-supplied strings cannot
// inject markup.
//
//	browser ─GET /──────────────▶ index.html, /ui/app.js, /ui/app.css
//	        ─GET /api/v1/miners──▶ api (every 2 s)
//	        ─POST /api/v1/commands, GET /api/v1/commands/{id}─▶ api
package ui
