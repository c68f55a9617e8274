package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAssetsServedWithCSP(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	// Every module app.js imports is served as JavaScript with the policy.
	_, _, app := get(ScriptPath)
	for _, mod := range []string{"lib.js", "overview.js", "miners.js", "miner.js", "nodes.js", "pages.js"} {
		if !strings.Contains(app, `from "./`+mod+`"`) {
			t.Errorf("app.js does not import %s", mod)
		}
		code, h, body := get("/ui/" + mod)
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || len(body) == 0 {
			t.Errorf("GET /ui/%s: %d %q %q", mod, code, h.Get("Content-Type"), h.Get("Content-Security-Policy"))
		}
		if strings.Contains(body, "innerHTML") || strings.Contains(body, "insertAdjacentHTML") || strings.Contains(body, "eval(") {
			t.Errorf("%s parses strings as markup or code", mod)
		}
	}
	if code, h, body := get("/"); code != 200 || !strings.Contains(body, `type="module"`) || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /: %d", code)
	}
	for _, p := range []string{"/ui/../ui.go", "/ui/%2e%2e/ui.go", "/ui/nope.js", "/ui/index.html", "/ui/", "/nope"} {
		if code, _, _ := get(p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}
