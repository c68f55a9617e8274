package localui_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/localui"
)

var rowStateRE = regexp.MustCompile(`<tr data-testid="miner-row" data-miner-id="([^"]+)">[\s\S]*?data-field="state" class="state state-[a-z]+">([a-z]+)<`)

// rowStates reads each row's state from the miner list page.
func rowStates(page string) map[string]string {
	out := map[string]string{}
	for _, m := range rowStateRE.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestBulkStopOf100 stops 100 of 120 miners through the list page's form: exactly one LocalCommand naming the
// 100, stamped as a local command, and the page shows them stopped.
func TestBulkStopOf100(t *testing.T) {
	h := newHarness(t, 120)
	h.site.SetLeaseEpoch(7)
	c := h.client("")
	c.login()
	f := c.form("/")
	form := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"return_to": {f["return_to"]}, "scope": {"selected"}, "action": {"stop"}}
	var ids []string
	for i := 1; i <= 100; i++ {
		ids = append(ids, fmt.Sprintf("sim-%d", i))
	}
	form["miner_id"] = ids
	r := c.postForm("/commands", form)
	if r.status != http.StatusSeeOther || r.location() != "/?submitted=lc-1" {
		t.Fatalf("bulk stop: %d %q %s", r.status, r.location(), r.body)
	}
	sub := h.site.Submitted()
	if len(sub) != 1 || len(sub[0].MinerIDs) != 100 || sub[0].All || sub[0].Action != pb.Action_ACTION_STOP_MINING ||
		sub[0].Actor != "local:admin" || sub[0].IdempotencyKey != f["idempotency_key"] {
		t.Fatalf("submitted %+v", sub)
	}
	cmds := h.site.LocalCommands()
	if len(cmds) != 1 {
		t.Fatalf("%d local commands, want 1", len(cmds))
	}
	lc := cmds[0]
	if !lc.GetLocalOrigin() || len(lc.GetMinerIds()) != 100 || lc.GetLeaseEpoch() != 7 || lc.GetHlc().GetWallMs() != t0.UnixMilli() ||
		lc.GetHlc().GetNodeId() != "node-1" || lc.GetSpec().GetAction() != pb.Action_ACTION_STOP_MINING {
		t.Fatalf("local command %v (hlc %s)", lc, hlc.Format(lc.GetHlc()))
	}
	page := c.get(r.location())
	if !strings.Contains(page.body, `data-testid="flash"`) || !strings.Contains(page.body, "Command lc-1 submitted.") {
		t.Fatal("no confirmation after the redirect")
	}
	states := rowStates(page.body)
	if len(states) != 120 {
		t.Fatalf("%d rows, want 120", len(states))
	}
	for i := 1; i <= 120; i++ {
		want := "stopped"
		if i > 100 {
			want = "mining"
		}
		if got := states[fmt.Sprintf("sim-%d", i)]; got != want {
			t.Fatalf("sim-%d is %q, want %q", i, got, want)
		}
	}
	if !strings.Contains(page.body, "100 stopped") || !strings.Contains(page.body, "20 mining") {
		t.Fatal("state counts not shown")
	}
}

func TestBulkScopeAllAndPowerTarget(t *testing.T) {
	h := newHarness(t, 10)
	c := h.client("")
	c.login()
	f := c.form("/")
	r := c.postForm("/commands", url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"scope": {"all"}, "action": {"set_power_target"}, "power_target_w": {"2800"}, "miner_id": {"sim-1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("all + power target: %d %s", r.status, r.body)
	}
	sub := h.site.Submitted()
	if len(sub) != 1 || !sub[0].All || len(sub[0].MinerIDs) != 0 || sub[0].PowerTargetW != 2800 {
		t.Fatalf("submitted %+v", sub)
	}
	if len(h.site.LocalCommands()[0].GetMinerIds()) != 10 {
		t.Fatal("all was not resolved to every miner")
	}
	for name, form := range map[string]url.Values{
		"nothing selected":     {"scope": {"selected"}, "action": {"stop"}},
		"unknown action":       {"scope": {"all"}, "action": {"format_disk"}},
		"no action":            {"scope": {"all"}},
		"power target too low": {"scope": {"all"}, "action": {"set_power_target"}, "power_target_w": {"5"}},
		"power target not num": {"scope": {"all"}, "action": {"set_power_target"}, "power_target_w": {"lots"}},
		"power target NaN":     {"scope": {"all"}, "action": {"set_power_target"}, "power_target_w": {"NaN"}},
		"bad scope":            {"scope": {"some"}, "action": {"stop"}},
		"no idempotency key":   {"scope": {"all"}, "action": {"stop"}, "idempotency_key": {""}},
		"bad miner id":         {"scope": {"selected"}, "action": {"stop"}, "miner_id": {"a b"}},
	} {
		form.Set("csrf_token", f["csrf_token"])
		if !form.Has("idempotency_key") {
			form.Set("idempotency_key", "k-"+strings.ReplaceAll(name, " ", "-"))
		}
		if r := c.postForm("/commands", form); r.status != http.StatusBadRequest || !strings.Contains(r.body, "The command was not sent") {
			t.Errorf("%s: %d", name, r.status)
		}
	}
	if n := h.site.SubmitCalls(); n != 1 {
		t.Fatalf("%d submissions, want 1", n)
	}
}

func TestIdempotencyKeyReused(t *testing.T) {
	h := newHarness(t, 5)
	c := h.client("")
	c.login()
	f := c.form("/")
	form := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"scope": {"selected"}, "action": {"reboot"}, "miner_id": {"sim-2", "sim-3"}}
	first := c.postForm("/commands", form)
	second := c.postForm("/commands", form) // a double click, or the browser re-posting
	if first.status != http.StatusSeeOther || second.location() != first.location() {
		t.Fatalf("re-post: %d %q then %d %q", first.status, first.location(), second.status, second.location())
	}
	if n := len(h.site.LocalCommands()); n != 1 {
		t.Fatalf("%d commands for one idempotency key", n)
	}
	// The same key for something else is a conflict, not a silent no-op.
	form.Set("action", "stop")
	if r := c.postForm("/commands", form); r.status != http.StatusConflict {
		t.Fatalf("same key, other command: %d", r.status)
	}
	// Each page render has its own key, so a second deliberate command goes through.
	if f2 := c.form("/"); f2["idempotency_key"] == f["idempotency_key"] || f2["idempotency_key"] == "" {
		t.Fatal("the page reuses its idempotency key")
	}
	// The API too.
	csrf := c.apiLoginFromPage()
	body := map[string]any{"miner_ids": []string{"sim-5"}, "action": "stop", "idempotency_key": "script-run-42"}
	a := c.postJSON("/api/local/commands", body, csrf)
	b := c.postJSON("/api/local/commands", body, csrf)
	if a.status != http.StatusAccepted || a.body != b.body {
		t.Fatalf("API re-post: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	if n := len(h.site.LocalCommands()); n != 2 {
		t.Fatalf("%d commands, want 2", n)
	}
}

var bannerRE = regexp.MustCompile(`<div class="banner link-([a-z]+)" data-testid="link-banner" data-link="([a-z]+)" role="status">\s*<span data-field="link-text">([^<]*)</span>`)

func banner(t *testing.T, page string) (state, text string) {
	t.Helper()
	m := bannerRE.FindStringSubmatch(page)
	if m == nil || m[1] != m[2] {
		t.Fatalf("no link banner in the page:\n%s", page)
	}
	return m[2], html.UnescapeString(m[3])
}

func TestLinkBanner(t *testing.T) {
	h := newHarness(t, 2)
	h.clock.Advance(2 * time.Hour)
	c := h.client("")
	c.login()
	state, text := banner(t, c.get("/").body)
	if state != "up" || text != "Cloud link up since 2025-03-01 12:00:00 UTC (2h 0m ago)." {
		t.Fatalf("up: %s %q", state, text)
	}
	h.site.SetLink(localui.LinkView{Configured: true, Up: false, Since: h.clock.Now().Add(-5 * time.Minute), LastError: "dial tcp: connection refused"})
	for _, p := range []string{"/", "/commands", "/curtailment", "/miners/sim-1"} {
		state, text = banner(t, c.get(p).body)
		if state != "down" || !strings.Contains(text, "Cloud link DOWN since 2025-03-01 13:55:00 UTC (5m ago)") ||
			!strings.Contains(text, "connection refused") || !strings.Contains(text, "local-degraded mode") {
			t.Fatalf("%s down: %s %q", p, state, text)
		}
	}
	r := c.get("/api/local/link")
	var l struct {
		Up     bool   `json:"up"`
		State  string `json:"state"`
		Banner string `json:"banner"`
		Since  string `json:"since"`
	}
	if err := json.Unmarshal([]byte(r.body), &l); err != nil || l.Up || l.State != "down" || !strings.HasPrefix(l.Banner, "Cloud link DOWN") || l.Since == "" {
		t.Fatalf("API link: %s %v", r.body, err)
	}
	h.site.SetLink(localui.LinkView{})
	if state, text = banner(t, c.get("/").body); state != "none" || !strings.Contains(text, "standalone") {
		t.Fatalf("no link: %s %q", state, text)
	}
}

// TestMinerStringsEscaped: a miner controls its error strings, model, pool URLs; none of it becomes markup.
func TestMinerStringsEscaped(t *testing.T) {
	h := newHarness(t, 3)
	xss := `<script>alert(1)</script><img src=x onerror=alert(2)>"'><b>`
	h.site.SetMinerError("sim-1", xss)
	v, _ := h.site.Miner(t.Context(), "sim-2")
	v.Model = xss
	v.Errors = []string{xss}
	v.Pools = []localui.PoolView{{URL: `javascript:alert(3)" onmouseover="alert(4)`, User: xss}}
	h.site.SetMiner(v)
	h.site.SetMiner(localui.MinerView{ID: `evil"><svg onload=alert(5)>`, State: "mining"})
	h.site.SetLink(localui.LinkView{Configured: true, LastError: xss})
	c := h.client("")
	c.login()
	for _, p := range []string{"/", "/miners/sim-1", "/miners/sim-2", "/miners/" + url.PathEscape(`evil"><svg onload=alert(5)>`)} {
		r := c.get(p)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d", p, r.status)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "<svg onload", `'><b>`, `" onmouseover="`} {
			if strings.Contains(r.body, raw) {
				t.Fatalf("%s contains raw %q", p, raw)
			}
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("%s does not show the escaped string", p)
		}
	}
	r := c.get("/api/local/miners/sim-1")
	if strings.Contains(r.body, "<script>") || !strings.Contains(r.body, `\u003cscript\u003e`) || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("API: %s %s", r.header.Get("Content-Type"), r.body)
	}
	if !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatal("no CSP")
	}
}

func TestMinerDetailCommandsAndCurtailment(t *testing.T) {
	h := newHarness(t, 4)
	c := h.client("")
	c.login()
	if r := c.get("/miners/nope"); r.status != http.StatusNotFound {
		t.Fatalf("unknown miner: %d", r.status)
	}
	d := c.get("/miners/sim-3")
	if d.status != http.StatusOK || !strings.Contains(d.body, `data-testid="miner-detail" data-miner-id="sim-3"`) ||
		!strings.Contains(html.UnescapeString(d.body), "stratum+tcp://pool.example:3333") || !strings.Contains(d.body, `data-testid="boards"`) {
		t.Fatalf("detail: %d", d.status)
	}
	f := hidden(d.body)
	r := c.postForm("/commands", url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"return_to": {f["return_to"]}, "scope": {f["scope"]}, "miner_id": {f["miner_id"]}, "action": {"curtail"}})
	if r.status != http.StatusSeeOther || r.location() != "/miners/sim-3?submitted=lc-1" {
		t.Fatalf("per-miner curtail: %d %q", r.status, r.location())
	}
	if m, _ := h.site.Miner(t.Context(), "sim-3"); m.State != "curtailed" {
		t.Fatalf("sim-3 %s", m.State)
	}
	cf := c.form("/curtailment")
	r = c.postForm("/curtailment", url.Values{"csrf_token": {cf["csrf_token"]}, "idempotency_key": {cf["idempotency_key"]}, "op": {"start"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/curtailment?submitted=") {
		t.Fatalf("curtailment start: %d %q", r.status, r.location())
	}
	if page := c.get("/curtailment"); !strings.Contains(page.body, "<b>4</b> of 4 miners are curtailed") {
		t.Fatal("curtailment page does not show 4 of 4 curtailed")
	}
	cf = c.form("/curtailment")
	r = c.postForm("/curtailment", url.Values{"csrf_token": {cf["csrf_token"]}, "idempotency_key": {cf["idempotency_key"] + "-stop"}, "op": {"stop"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("curtailment stop: %d", r.status)
	}
	log := c.get("/commands")
	rows := strings.Count(log.body, `data-testid="command-row"`)
	if rows != 3 || !strings.Contains(log.body, "uncurtail") || !strings.Contains(log.body, "local:admin") || !strings.Contains(log.body, `data-status="succeeded"`) {
		t.Fatalf("command log: %d rows", rows)
	}
	// Newest first.
	if strings.Index(log.body, `data-command-id="lc-3"`) > strings.Index(log.body, `data-command-id="lc-1"`) {
		t.Fatal("command log not newest first")
	}
	h.site.FailSubmit(fmt.Errorf("lease lost: %w", localui.ErrRefused))
	cf = c.form("/curtailment")
	if r := c.postForm("/curtailment", url.Values{"csrf_token": {cf["csrf_token"]}, "idempotency_key": {cf["idempotency_key"]}, "op": {"start"}}); r.status != http.StatusConflict || !strings.Contains(r.body, "lease lost") {
		t.Fatalf("refused curtailment: %d", r.status)
	}
}

func TestPagination(t *testing.T) {
	h := newHarness(t, 25, func(c *localui.Config) { c.PageSize = 10 })
	c := h.client("")
	c.login()
	p1 := c.get("/")
	if n := len(rowStates(p1.body)); n != 10 || !strings.Contains(p1.body, "page 1 of 3") {
		t.Fatalf("page 1: %d rows", n)
	}
	p3 := c.get("/?page=3")
	if n := len(rowStates(p3.body)); n != 5 {
		t.Fatalf("page 3: %d rows", n)
	}
	if !strings.Contains(p3.body, `data-refresh-url="/api/local/miners?limit=10&amp;offset=20"`) {
		t.Fatal("refresh URL does not follow the page")
	}
	f := c.get("/?q=sim-2")
	if n := len(rowStates(f.body)); n != 7 { // sim-2, sim-20..25
		t.Fatalf("filter q=sim-2: %d rows", n)
	}
}

func TestAPI(t *testing.T) {
	h := newHarness(t, 6)
	c := h.client("")
	csrf := c.apiLogin()
	var miners struct {
		Total    int                 `json:"total"`
		Filtered int                 `json:"filtered"`
		Miners   []localui.MinerView `json:"miners"`
	}
	r := c.get("/api/local/miners?limit=4")
	if err := json.Unmarshal([]byte(r.body), &miners); err != nil || miners.Total != 6 || len(miners.Miners) != 4 {
		t.Fatalf("miners: %s %v", r.body, err)
	}
	r = c.postJSON("/api/local/commands", map[string]any{"miner_ids": []string{"sim-1", "sim-2"}, "action": "stop"}, csrf)
	if r.status != http.StatusAccepted || !strings.Contains(r.body, `"command_id":"lc-1"`) || !strings.Contains(r.body, `"idempotency_key":"`) {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	r = c.get("/api/local/miners?state=stopped")
	if err := json.Unmarshal([]byte(r.body), &miners); err != nil || miners.Filtered != 2 {
		t.Fatalf("stopped: %s", r.body)
	}
	for name, body := range map[string]string{
		"unknown field": `{"action":"stop","all":true,"sudo":true}`,
		"bad action":    `{"action":"explode","all":true}`,
		"both":          `{"action":"stop","all":true,"miner_ids":["sim-1"]}`,
		"twice":         `{"action":"stop","miner_ids":["sim-1","sim-1"]}`,
		"trailing":      `{"action":"stop","all":true} {}`,
	} {
		if r := c.request("POST", "/api/local/commands", strings.NewReader(body), map[string]string{"Content-Type": "application/json", localui.CSRFHeader: csrf}); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := c.request("POST", "/api/local/commands", strings.NewReader(`action=stop`), map[string]string{"Content-Type": "application/x-www-form-urlencoded", localui.CSRFHeader: csrf}); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("form body to the API: %d", r.status)
	}
	r = c.postJSON("/api/local/curtailment", map[string]string{"op": "start", "idempotency_key": "dr-event-1"}, csrf)
	if r.status != http.StatusAccepted {
		t.Fatalf("curtailment: %d %s", r.status, r.body)
	}
	var log struct {
		Commands []localui.CommandView `json:"commands"`
	}
	r = c.get("/api/local/commands?limit=10")
	if err := json.Unmarshal([]byte(r.body), &log); err != nil || len(log.Commands) != 2 || log.Commands[0].Action != "curtail" ||
		len(log.Commands[0].MinerIDs) != 6 || !log.Commands[0].LocalOrigin || log.Commands[0].Summary.Status() != "succeeded" {
		t.Fatalf("commands: %s %v", r.body, err)
	}
	if r := c.get("/api/local/miners/nope"); r.status != http.StatusNotFound {
		t.Fatalf("unknown miner: %d", r.status)
	}
	if r := c.get("/api/local/nothing"); r.status != http.StatusNotFound || !strings.Contains(r.body, `"error"`) {
		t.Fatalf("unknown endpoint: %d %s", r.status, r.body)
	}
	if r := c.postJSON("/api/local/logout", map[string]string{}, csrf); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	if r := c.get("/api/local/miners"); r.status != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", r.status)
	}
	// Login through the API counts toward the lockout like the form.
	for range 5 {
		c.postJSON("/api/local/login", map[string]string{"user": adminUser, "password": "not the password"}, "")
	}
	if r := c.postJSON("/api/local/login", map[string]string{"user": adminUser, "password": adminPass}, ""); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" {
		t.Fatalf("API login while locked: %d %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestStaticAndNotFound(t *testing.T) {
	h := newHarness(t, 1)
	c := h.client("")
	if r := c.get("/static/app.js"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Fatalf("app.js: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := c.get("/static/"); r.status != http.StatusNotFound {
		t.Fatalf("static listing: %d", r.status)
	}
	if r := c.get("/no/such/page"); r.status != http.StatusNotFound {
		t.Fatalf("unknown page: %d", r.status)
	}
}
