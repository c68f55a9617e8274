package node_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	pageCSRF    = regexp.MustCompile(`<input type="hidden" name="csrf_token" value="([^"]*)">`)
	pageNext    = regexp.MustCompile(`<input type="hidden" name="next" value="([^"]*)">`)
	pageStopID  = regexp.MustCompile(`(?s)data-testid="curtail-event-stop-form">.*?name="event_id" value="([^"]*)"`)
	pageState   = regexp.MustCompile(`data-testid="curtail-event-state">([a-z]+)<`)
	pageCounted = regexp.MustCompile(`data-testid="curtail-event-curtailed">(\d+)`)
)

// TestLocalUICurtailmentEventPage drives the curtailment page of the node's local UI as a browser without
// script would (HTTPS, the session cookie, the CSRF token of the page's forms) against simulated miners: the
// page shows the idle event, a form starts an event by a kW target with an end time, the page shows it
// holding with the miners that really sleep, and the stop form ends it. Forms without the CSRF token and
// malformed forms change nothing.
func TestLocalUICurtailmentEventPage(t *testing.T) {
	s := startAutomationSite(t, siteOpts{miners: 6, poll: 300 * time.Millisecond, auto: tightCurtail()})
	s.allMining(20*time.Second, nil)
	c, base := startCurtailLocalUI(t, s)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	type reply struct {
		status   int
		location string
		body     string
	}
	do := func(method, path string, form url.Values) reply {
		t.Helper()
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return reply{res.StatusCode, res.Header.Get("Location"), string(b)}
	}
	first := func(re *regexp.Regexp, page string) string {
		if m := re.FindStringSubmatch(page); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	lp := do("GET", "/login", nil).body
	if r := do("POST", "/login", url.Values{"csrf_token": {first(pageCSRF, lp)}, "next": {first(pageNext, lp)},
		"user": {"admin"}, "password": {"Quartz-Lantern-Meadow-91"}}); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}

	page := do("GET", "/curtailment", nil)
	if page.status != 200 || !strings.Contains(page.body, `data-testid="curtail-event" data-state="idle"`) ||
		!strings.Contains(page.body, `data-testid="curtail-event-start-form"`) || strings.Contains(page.body, `data-testid="curtail-event-stop-form"`) {
		t.Fatalf("idle page: %d\n%s", page.status, page.body)
	}
	csrf := first(pageCSRF, page.body)
	start := url.Values{"csrf_token": {csrf}, "op": {"event-start"}, "target_kw": {"5"}, "end_after_min": {"30"}}

	// Without the page's CSRF token, nothing happens.
	noCSRF := url.Values{"op": {"event-start"}, "full": {"on"}}
	if r := do("POST", "/curtailment", noCSRF); r.status != http.StatusForbidden {
		t.Fatalf("without the CSRF token: %d", r.status)
	}
	noCSRF.Set("csrf_token", "forged")
	if r := do("POST", "/curtailment", noCSRF); r.status != http.StatusForbidden {
		t.Fatalf("with a forged CSRF token: %d", r.status)
	}
	// Malformed forms are refused with the reason, nothing started.
	for _, bad := range []url.Values{
		{"op": {"event-start"}},                                         // neither a target nor full
		{"op": {"event-start"}, "target_kw": {"lots"}},                  // not a number
		{"op": {"event-start"}, "target_kw": {"-2"}},                    // negative
		{"op": {"event-start"}, "target_kw": {"NaN"}},                   // not finite
		{"op": {"event-start"}, "full": {"on"}, "end_after_min": {"0"}}, // end now
		{"op": {"event-start"}, "full": {"on"}, "end_after_min": {"-5"}},
		{"op": {"event-start"}, "full": {"on"}, "end_after_min": {"99999999"}},
		{"op": {"event-start"}, "full": {"on"}, "event_id": {"has space"}},
		{"op": {"event-start"}, "full": {"on"}, "event_id": {strings.Repeat("x", 500)}},
		{"op": {"event-stop"}}, // no event named
		{"op": {"event-pause"}, "event_id": {"x"}},
	} {
		bad.Set("csrf_token", csrf)
		if r := do("POST", "/curtailment", bad); r.status != http.StatusBadRequest {
			t.Fatalf("malformed form %v: %d", bad, r.status)
		}
	}
	if r := do("POST", "/curtailment", url.Values{"csrf_token": {csrf}, "op": {"event-stop"}, "event_id": {"nothing-running"}}); r.status != http.StatusBadRequest {
		t.Fatalf("stop of no event: %d", r.status)
	}
	for _, m := range s.fleet.Miners() {
		if m.Snapshot().Sleeping {
			t.Fatalf("%s asleep after refused forms", m.ID())
		}
	}

	r := do("POST", "/curtailment", start)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/curtailment?event=local-") {
		t.Fatalf("start: %d %q %s", r.status, r.location, r.body)
	}
	if p := do("GET", r.location, nil); !strings.Contains(p.body, `data-testid="flash"`) || !strings.Contains(p.body, "updated.") {
		t.Fatalf("no flash after the start:\n%s", p.body)
	}
	waitUntil(t, 20*time.Second, "the page showing the event holding", nil, func() bool {
		page = do("GET", "/curtailment", nil)
		return first(pageState, page.body) == "holding" && !strings.Contains(page.body, "more commanded, not verified yet")
	})
	asleep := 0
	for _, m := range s.fleet.Miners() {
		if m.Snapshot().Sleeping {
			asleep++
		}
	}
	if shown := first(pageCounted, page.body); asleep < 1 || shown != strconv.Itoa(asleep) {
		t.Fatalf("%d miners asleep, the page shows %q curtailed", asleep, shown)
	}
	if !strings.Contains(page.body, `data-testid="curtail-event-target">shed 5.0 kW`) ||
		!strings.Contains(page.body, `data-testid="curtail-event-stragglers">none`) {
		t.Fatalf("holding page:\n%s", page.body)
	}
	id := first(pageStopID, page.body)
	if !strings.HasPrefix(id, "local-") || strings.Contains(page.body, `data-testid="curtail-event-start-form"`) {
		t.Fatalf("the holding page has no stop form for the event (%q) or still offers a start", id)
	}
	if r := do("POST", "/curtailment", url.Values{"csrf_token": {csrf}, "op": {"event-stop"}, "event_id": {id}}); r.status != http.StatusSeeOther {
		t.Fatalf("stop: %d %s", r.status, r.body)
	}
	waitUntil(t, 20*time.Second, "the page showing the event done", nil, func() bool {
		page = do("GET", "/curtailment", nil)
		return first(pageState, page.body) == "done" && strings.Contains(page.body, `data-testid="curtail-event-start-form"`)
	})
	audit, err := s.node.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range audit {
		if a.GetActor() == "local:admin" && a.GetLocalOrigin() && (a.GetCommandId() == "curtail/"+id+"/start" || a.GetCommandId() == "curtail/"+id+"/stop") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d local audit records of the event, want 2", n)
	}
}
