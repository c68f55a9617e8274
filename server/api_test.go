package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIAuth(t *testing.T) {
	h := newHarness(t)
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + testToken, testToken, "Bearer " + testToken + "x"} {
		for _, path := range []string{"/api/v1/miners", "/api/v1/nodes", "/api/v1/openapi.json", "/api/v1/commands/x", "/api/v1/nope"} {
			code, body := h.doAuth("GET", path, "", auth, nil)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Error.Code != "unauthorized" || e.Error.Message == "" {
				t.Errorf("auth %q %s: %d %s, want 401 with a JSON error", auth, path, code, body)
			}
		}
	}
	if code, body := h.doAuth("POST", "/api/v1/commands", `{"miner_ids":["m1"],"action":"reboot"}`, "", nil); code != 401 {
		t.Errorf("unauthenticated POST: %d %s", code, body)
	}
	if code, _ := h.do("GET", "/api/v1/nodes", "", nil); code != 200 {
		t.Errorf("right token: %d", code)
	}
	if code, _ := h.doAuth("GET", "/api/v1/nodes", "", "bearer "+testToken, nil); code != 200 {
		t.Errorf("scheme is case-insensitive: %d", code)
	}
	if code, _ := h.do("GET", "/api/v1/nope", "", nil); code != 404 {
		t.Errorf("unknown endpoint: %d", code)
	}
}

func TestAPIRefusesBadCommandsAndStoresNothing(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1))
	c, _ := h.openControl("n1", 0)
	huge := `{"miner_ids":["` + strings.Repeat("m", 2<<20) + `"],"action":"reboot"}`
	cases := []struct{ name, body, want string }{
		{"malformed JSON", `{"miner_ids":["m1"],"action":`, "malformed JSON"},
		{"not an object", `["m1"]`, "malformed JSON"},
		{"trailing data", `{"miner_ids":["m1"],"action":"reboot"} {}`, "data after the command object"},
		{"unknown field", `{"miner_ids":["m1"],"action":"reboot","force":true}`, "unknown field"},
		{"empty body", ``, "empty body"},
		{"unknown action", `{"miner_ids":["m1"],"action":"explode"}`, `unknown action "explode"`},
		{"missing action", `{"miner_ids":["m1"]}`, `unknown action ""`},
		{"empty miner list", `{"miner_ids":[],"action":"reboot"}`, "miner_ids is empty"},
		{"no miner list", `{"action":"reboot"}`, "miner_ids is empty"},
		{"duplicate miner", `{"miner_ids":["m1","m1"],"action":"reboot"}`, "appears twice"},
		{"unknown miner", `{"miner_ids":["m1","ghost","ghost2"],"action":"reboot"}`, "unknown miners: ghost, ghost2"},
		{"power target missing", `{"miner_ids":["m1"],"action":"set_power_target"}`, "power_target_w"},
		{"power target on reboot", `{"miner_ids":["m1"],"action":"reboot","power_target_w":5}`, "only valid with set_power_target"},
		{"oversized body", huge, "body exceeds 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.do("POST", "/api/v1/commands", tc.body, nil)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %s: not a JSON error", code, body)
			}
			if code != http.StatusBadRequest || e.Error.Code != "bad_request" || !strings.Contains(e.Error.Message, tc.want) {
				t.Fatalf("%d %s, want 400 containing %q", code, body, tc.want)
			}
		})
	}
	// Content type other than JSON.
	req, _ := http.NewRequest("POST", h.web.URL+"/api/v1/commands", bytes.NewBufferString(`{"miner_ids":["m1"],"action":"reboot"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "text/plain")
	if res, err := h.web.Client().Do(req); err != nil || res.StatusCode != 400 {
		t.Fatalf("text/plain body: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	recs, err := h.srv.Store().Commands()
	if err != nil || len(recs) != 0 {
		t.Fatalf("refused commands stored: %d records, %v", len(recs), err)
	}
	c.quiet(100 * time.Millisecond)
	if n := h.nodes().Nodes[0]; n.LastSeq != 0 || n.QueuedCommands != 0 {
		t.Fatalf("refused commands reached the node: %+v", n)
	}
	if code, _ := h.do("GET", "/api/v1/commands/nope", "", nil); code != 404 {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestUIServed(t *testing.T) {
	h := newHarness(t)
	for path, want := range map[string]string{"/": "<title>hashfleet</title>", "/ui/app.js": "textContent", "/ui/app.css": "table"} {
		res, err := h.web.Client().Get(h.web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(b.String(), want) || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q", path, res.StatusCode, res.Header.Get("Content-Security-Policy"))
		}
	}
	if res, err := h.web.Client().Get(h.web.URL + "/nope"); err != nil || res.StatusCode != 404 {
		t.Errorf("GET /nope: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}
