package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Paths the page is served at.
const (
	IndexPath  = "/"
	ScriptPath = "/ui/app.js"
	StylePath  = "/ui/app.css"
)

// csp allows only this origin's script, style and API; no inline script, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the operator page: index at /, script and style under /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	serve := func(name, ctype string) http.HandlerFunc {
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			panic(err)
		}
		return func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		}
	}
	mux.Handle("GET /{$}", serve("index.html", "text/html; charset=utf-8"))
	mux.Handle("GET "+ScriptPath, serve("app.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET "+StylePath, serve("app.css", "text/css; charset=utf-8"))
	return mux
}
