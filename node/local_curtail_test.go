package node_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/localui"
)

// TestLocalUICurtailmentEvents starts and stops a curtailment event from the node's local UI (HTTPS, a
// logged-in session with its CSRF token) against simulated miners, and reads the event's state there:
// target, shed kW, miners curtailed, stragglers. Malformed requests are refused before they reach the node.
func TestLocalUICurtailmentEvents(t *testing.T) {
	s := startAutomationSite(t, siteOpts{miners: 6, poll: 300 * time.Millisecond, auto: tightCurtail()})
	s.allMining(20*time.Second, nil)
	c, base := startCurtailLocalUI(t, s)
	do := func(method, path, csrf string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(localui.CSRFHeader, csrf)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if out != nil && res.StatusCode < 300 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %s: %v", method, path, raw, err)
			}
		}
		return res.StatusCode
	}
	if st := do("GET", "/api/local/curtail-event", "", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("without a session: %d", st)
	}
	var login struct {
		CSRFToken string `json:"csrf_token"`
	}
	if st := do("POST", "/api/local/login", "", map[string]string{"user": "admin", "password": "Quartz-Lantern-Meadow-91"}, &login); st != 200 {
		t.Fatalf("login: %d", st)
	}
	csrf := login.CSRFToken
	var v localui.CurtailEventView
	if st := do("GET", "/api/local/curtail-event", "", nil, &v); st != 200 || v.State != "idle" {
		t.Fatalf("idle state: %d %+v", st, v)
	}
	ids := []string{s.fleet.Miners()[0].ID(), s.fleet.Miners()[1].ID(), s.fleet.Miners()[2].ID()}
	start := map[string]any{"op": "start", "event_id": "local-1", "target_kw": 5, "miner_ids": ids}
	if st := do("POST", "/api/local/curtail-event", "", start, nil); st != http.StatusForbidden {
		t.Fatalf("without the CSRF token: %d", st)
	}
	for _, bad := range []map[string]any{
		{"op": "start", "event_id": "x"},                               // no target
		{"op": "start", "event_id": "x", "full": true, "target_kw": 1}, // both
		{"op": "start", "event_id": "x", "target_kw": -3},
		{"op": "start", "event_id": "has space", "full": true},
		{"op": "start", "full": true, "miner_ids": []string{""}},
		{"op": "start", "full": true, "end_at": "2001-01-01T00:00:00Z"},
		{"op": "stop"},
		{"op": "pause", "event_id": "x"},
		{"op": "start", "full": true, "extra": 1},
	} {
		if st := do("POST", "/api/local/curtail-event", csrf, bad, nil); st != http.StatusBadRequest {
			t.Fatalf("bad request %v: %d", bad, st)
		}
	}
	if st := do("POST", "/api/local/curtail-event", csrf, map[string]any{"op": "stop", "event_id": "nothing-running"}, nil); st != http.StatusBadRequest {
		t.Fatalf("stop of no event: %d", st)
	}
	if st := do("POST", "/api/local/curtail-event", csrf, start, &v); st != http.StatusAccepted || v.EventID != "local-1" || v.TargetKW != 5 {
		t.Fatalf("start: %d %+v", st, v)
	}
	waitUntil(t, 20*time.Second, "the local event holding", nil, func() bool {
		return do("GET", "/api/local/curtail-event", "", nil, &v) == 200 && v.State == "holding" && v.MinersPending == 0
	})
	if v.AchievedKW < 5-5 || v.MinersCurtailed < 2 || v.BaselineKW <= v.MeasuredKW || v.Stragglers == nil {
		t.Fatalf("holding state %+v", v)
	}
	asleep := 0
	for _, m := range s.fleet.Miners() {
		if m.Snapshot().Sleeping {
			asleep++
		}
	}
	if asleep != v.MinersCurtailed {
		t.Fatalf("%d miners asleep, %d shown curtailed", asleep, v.MinersCurtailed)
	}
	if st := do("POST", "/api/local/curtail-event", csrf, map[string]any{"op": "stop", "event_id": "local-1"}, &v); st != http.StatusAccepted {
		t.Fatalf("stop: %d", st)
	}
	waitUntil(t, 20*time.Second, "the local event done", nil, func() bool {
		return do("GET", "/api/local/curtail-event", "", nil, &v) == 200 && v.State == "done" && v.EventID == "local-1"
	})
	// Started and stopped by the local admin: both in the node's audit, as local actions.
	audit, err := s.node.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range audit {
		if r.GetActor() == "local:admin" && r.GetLocalOrigin() && (r.GetCommandId() == "curtail/local-1/start" || r.GetCommandId() == "curtail/local-1/stop") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d local curtailment audit records, want 2", n)
	}
}
