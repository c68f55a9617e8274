package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node/localui"
	"google.golang.org/grpc"
)

// Local-degraded mode end to end, in split mode over real sockets: the cloud server and its TLS gateway,
// the node dialling it, 100 (or 3) simulated miners on loopback TCP, and the node's local UI over HTTPS with
// its self-signed certificate, driven by a real HTTP client (login, CSRF, session cookie).

const localPass = "site staff only 7731"

// partition cuts and heals the node's transport to the gateway: while cut, every connection is closed and
// every dial fails, as when the site's WAN goes down while the server keeps running.
type partition struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (p *partition) dial(ctx context.Context, addr string) (net.Conn, error) {
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	if cut {
		return nil, errors.New("partition: WAN down")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		_ = c.Close()
		return nil, errors.New("partition: WAN down")
	}
	p.conns = append(p.conns, c)
	return c, nil
}

func (p *partition) set(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

// uiClient is one browser on the site LAN: a cookie jar and the local UI's certificate pinned (no other
// root trusted), redirects not followed.
type uiClient struct {
	t    *testing.T
	base string // https://127.0.0.1:PORT
	c    *http.Client
	csrf string // the API session's CSRF token
}

func newUIClient(t *testing.T, srv *localui.Server) *uiClient {
	t.Helper()
	if srv == nil || srv.Addr() == nil {
		t.Fatal("the node serves no local UI")
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate().Leaf)
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &uiClient{t: t, base: "https://" + srv.Addr().String(), c: &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type uiResp struct {
	status int
	body   string
	header http.Header
}

func (u *uiClient) do(method, path string, body io.Reader, hdr map[string]string) uiResp {
	u.t.Helper()
	req, err := http.NewRequest(method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return uiResp{status: res.StatusCode, body: string(b), header: res.Header}
}

var uiHiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

func (u *uiClient) form(path string) map[string]string {
	u.t.Helper()
	r := u.do("GET", path, nil, nil)
	if r.status != http.StatusOK {
		u.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	out := map[string]string{}
	for _, m := range uiHiddenRE.FindAllStringSubmatch(r.body, -1) {
		if _, ok := out[m[1]]; !ok {
			out[m[1]] = html.UnescapeString(m[2])
		}
	}
	return out
}

func (u *uiClient) post(path string, f url.Values) uiResp {
	u.t.Helper()
	return u.do("POST", path, strings.NewReader(f.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// login logs in through the form (CSRF token of the login page) and through the JSON API.
func (u *uiClient) login() {
	u.t.Helper()
	f := u.form("/login")
	r := u.post("/login", url.Values{"csrf_token": {f["csrf_token"]}, "next": {f["next"]}, "user": {"admin"}, "password": {localPass}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		u.t.Fatalf("login: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	b, _ := json.Marshal(map[string]string{"user": "admin", "password": localPass})
	r = u.do("POST", "/api/local/login", bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	var s struct {
		CSRFToken string `json:"csrf_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &s) != nil || s.CSRFToken == "" {
		u.t.Fatalf("api login: %d %s", r.status, r.body)
	}
	u.csrf = s.CSRFToken
}

// apiCommand submits a local command through the JSON API (CSRF header) and returns the HTTP status and
// the command id.
func (u *uiClient) apiCommand(body map[string]any) (int, string) {
	u.t.Helper()
	b, _ := json.Marshal(body)
	r := u.do("POST", "/api/local/commands", bytes.NewReader(b), map[string]string{"Content-Type": "application/json", localui.CSRFHeader: u.csrf})
	var out struct {
		CommandID string `json:"command_id"`
	}
	_ = json.Unmarshal([]byte(r.body), &out)
	return r.status, out.CommandID
}

func (u *uiClient) getJSON(path string, out any) {
	u.t.Helper()
	r := u.do("GET", path, nil, nil)
	if r.status != http.StatusOK {
		u.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), out); err != nil {
		u.t.Fatalf("GET %s: %v", path, err)
	}
}

// writesSince returns each miner's accepted writes of command cmd after t, by miner id.
func writesSince(f *sim.Fleet, cmd string, after time.Time) map[string]int {
	out := map[string]int{}
	for _, m := range f.Miners() {
		for _, w := range m.WriteLog() {
			if w.Command == cmd && w.Accepted && w.At.After(after) {
				out[m.ID()]++
			}
		}
	}
	return out
}

type localAuditView struct {
	CommandID   string   `json:"command_id"`
	Actor       string   `json:"actor"`
	Code        string   `json:"code"`
	MinerIDs    []string `json:"miner_ids"`
	LocalOrigin bool     `json:"local_origin"`
	Message     string   `json:"message"`
}

func (s *splitSite) localAudit() []localAuditView {
	s.t.Helper()
	var out struct {
		Records []localAuditView `json:"records"`
	}
	if st := s.do("GET", "/api/v1/nodes/"+s.nodeID+"/audit?limit=10000", nil, &out); st != 200 {
		s.t.Fatalf("node audit: HTTP %d", st)
	}
	var local []localAuditView
	for _, r := range out.Records {
		if r.LocalOrigin {
			local = append(local, r)
		}
	}
	return local
}

// The WAN goes down (the server stops); staff log in to the node's local UI over HTTPS and stop all 100
// miners with one bulk form post (posted twice, as a double click does); every simulator's write log shows
// one stop; the link comes back and the cloud's audit holds all 100 local actions exactly once, marked
// local_origin with the local admin as actor.
func TestLocalDegradedBulkStopBackfilledOnce(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 100, localUI: true})
	if _, err := SetLocalAdmin(s.nodeDir, "admin", localPass); err != nil {
		t.Fatal(err)
	}
	ui := newUIClient(t, s.node.LocalUI)

	// The node's own cloud api_key is worth nothing at the local UI.
	if r := ui.do("GET", "/api/local/miners", nil, map[string]string{"Authorization": "Bearer " + s.node.Enrollment.APIKey}); r.status != http.StatusUnauthorized {
		t.Fatalf("cloud api key at the local UI: %d", r.status)
	}
	if r := ui.do("GET", "/api/local/miners?api_key="+url.QueryEscape(s.node.Enrollment.APIKey), nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("cloud api key as a query parameter: %d", r.status)
	}

	s.stopServer()
	s.waitLink(false)
	cut := time.Now()

	ui.login()
	var link localui.LinkView
	ui.getJSON("/api/local/link", &link)
	if !link.Configured || link.Up {
		t.Fatalf("link banner %+v, want configured and down", link)
	}
	var miners struct {
		Miners []localui.MinerView `json:"miners"`
	}
	ui.getJSON("/api/local/miners", &miners)
	if len(miners.Miners) != 100 {
		t.Fatalf("local UI lists %d miners, want 100", len(miners.Miners))
	}

	f := ui.form("/")
	post := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]}, "return_to": {"/"},
		"scope": {"all"}, "action": {"stop"}}
	posted := time.Now()
	r := ui.post("/commands", post)
	loc, _ := url.Parse(r.header.Get("Location"))
	id := loc.Query().Get("submitted")
	if r.status != http.StatusSeeOther || id == "" {
		t.Fatalf("bulk stop: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	r = ui.post("/commands", post) // the double click
	if loc2, _ := url.Parse(r.header.Get("Location")); r.status != http.StatusSeeOther || loc2.Query().Get("submitted") != id {
		t.Fatalf("the same form again: %d %q, want the same command %s", r.status, r.header.Get("Location"), id)
	}
	// Without the CSRF token, nothing runs.
	bad := url.Values{"idempotency_key": {"x-1"}, "scope": {"all"}, "action": {"start"}}
	if r := ui.post("/commands", bad); r.status != http.StatusForbidden {
		t.Fatalf("form without CSRF: %d", r.status)
	}

	waitFor(t, 20*time.Second, "all 100 simulators stopped", func() bool {
		for _, m := range s.fleet.Miners() {
			if m.Snapshot().Mining {
				return false
			}
		}
		return true
	})
	allStopped := time.Since(posted)
	pauses := writesSince(s.fleet, "pause", cut)
	if len(pauses) != 100 {
		t.Fatalf("%d miners got a stop in their write log, want 100", len(pauses))
	}
	for m, n := range pauses {
		if n != 1 {
			t.Fatalf("%s got %d stops, want exactly 1", m, n)
		}
	}
	if n := len(writesSince(s.fleet, "resume", cut)); n != 0 {
		t.Fatalf("%d miners resumed", n)
	}
	var log struct {
		Commands []localui.CommandView `json:"commands"`
	}
	waitFor(t, 10*time.Second, "the command log shows the stop finished", func() bool {
		ui.getJSON("/api/local/commands", &log)
		return len(log.Commands) == 1 && log.Commands[0].Summary.Succeeded == 100
	})
	if c := log.Commands[0]; c.ID != id || !c.LocalOrigin || c.Actor != "local:admin" || c.Action != "stop" || c.HLC == "" {
		t.Fatalf("command log %+v", c)
	}

	s.startServer()
	restored := time.Now()
	s.waitLink(true)
	var local []localAuditView
	waitFor(t, 20*time.Second, "the local stop in the cloud audit", func() bool {
		local = s.localAudit()
		return len(local) > 0
	})
	t.Logf("bulk stop of 100 miners through the local UI: all stopped in the simulators %s after the form post; "+
		"in the cloud audit %s after the server came back", allStopped.Round(time.Millisecond), time.Since(restored).Round(time.Millisecond))
	seen := map[string]int{}
	for _, rec := range local {
		if rec.CommandID != id || rec.Actor != "local:admin" || rec.Code != "succeeded" {
			t.Fatalf("cloud audit record %+v", rec)
		}
		for _, m := range rec.MinerIDs {
			seen[m]++
		}
	}
	if len(local) != 1 || len(seen) != 100 {
		t.Fatalf("cloud audit: %d local records naming %d miners; want 1 record, 100 miners", len(local), len(seen))
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("%s appears %d times in the cloud audit", m, n)
		}
	}
	var org struct {
		Records []struct {
			Node string `json:"node_id"`
			localAuditView
		} `json:"records"`
	}
	if st := s.do("GET", "/api/v1/audit?origin=local", nil, &org); st != 200 || len(org.Records) != 1 ||
		org.Records[0].Node != s.nodeID || org.Records[0].CommandID != id || !org.Records[0].LocalOrigin {
		t.Fatalf("org audit (local): HTTP %d %+v", st, org.Records)
	}
	if st := s.do("GET", "/api/v1/audit?origin=sideways", nil, nil); st != http.StatusBadRequest {
		t.Fatalf("bad origin filter: %d", st)
	}
	// The events stream keeps going; a later batch (any) must not bring the command in again.
	time.Sleep(500 * time.Millisecond)
	if n := len(s.localAudit()); n != 1 {
		t.Fatalf("%d local audit records after more batches, want 1", n)
	}
}

type cloudCommand struct {
	Status  string `json:"status"`
	Results []struct {
		MinerID string `json:"miner_id"`
		Status  string `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"results"`
}

// result is a miner's result code ("succeeded", "conflict", ...).
func (c cloudCommand) result(miner string) string {
	for _, r := range c.Results {
		if r.MinerID == miner {
			return r.Code
		}
	}
	return ""
}

type conflictView struct {
	ID        string `json:"id"`
	Node      string `json:"node_id"`
	MinerID   string `json:"miner_id"`
	Field     string `json:"field"`
	CommandID string `json:"command_id"`
	Action    string `json:"action"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	Status    string `json:"status"`
	Reissued  string `json:"reissued_command_id"`
}

// The cloud queues "start" for two miners while the node is cut off; during the outage the operator stops
// one of them from the local UI. After the link heals, the stopped miner stays stopped and the cloud reports
// a conflict ("local action while offline"); the other miner's start runs, and so does a cloud command
// issued after reconnect. Resolving the conflict with apply re-issues the start, which now runs.
func TestLocalDegradedConflictHeldAndResolved(t *testing.T) {
	p := &partition{}
	s := startSplit(t, splitOpts{miners: 3, localUI: true, dialOpts: []grpc.DialOption{grpc.WithContextDialer(p.dial)}})
	if _, err := SetLocalAdmin(s.nodeDir, "admin", localPass); err != nil {
		t.Fatal(err)
	}
	ms := s.fleet.Miners()
	a, b, c := ms[0].ID(), ms[1].ID(), ms[2].ID()
	before := time.Now()
	ui := newUIClient(t, s.node.LocalUI)
	ui.login()

	p.set(true)
	s.waitLink(false)
	waitFor(t, 10*time.Second, "the cloud to see the node disconnected", func() bool {
		var nodes struct {
			Nodes []struct {
				ID        string `json:"node"`
				Connected bool   `json:"connected"`
			} `json:"nodes"`
		}
		if s.do("GET", "/api/v1/nodes", nil, &nodes) != 200 {
			return false
		}
		for _, n := range nodes.Nodes {
			if n.ID == s.nodeID {
				return !n.Connected
			}
		}
		return false
	})
	cut := time.Now()
	startID := s.command("start", a, b) // queued in the cloud: the node is unreachable

	st, stopID := ui.apiCommand(map[string]any{"action": "stop", "miner_ids": []string{a}, "idempotency_key": "stop-a-1"})
	if st != http.StatusAccepted && st != http.StatusOK {
		t.Fatalf("local stop: %d", st)
	}
	// The same idempotency key again (a retried request): the same command, nothing run twice.
	if st, again := ui.apiCommand(map[string]any{"action": "stop", "miner_ids": []string{a}, "idempotency_key": "stop-a-1"}); again != stopID || st >= 300 {
		t.Fatalf("same key again: %d %q, want %s", st, again, stopID)
	}
	if st, _ := ui.apiCommand(map[string]any{"action": "start", "miner_ids": []string{a}, "idempotency_key": "stop-a-1"}); st != http.StatusConflict {
		t.Fatalf("same key, different command: %d, want 409", st)
	}
	waitFor(t, 10*time.Second, a+" stopped by the local command", func() bool { return !ms[0].Snapshot().Mining })

	p.set(false)
	s.waitLink(true)
	var cmd cloudCommand
	defer func() {
		if t.Failed() {
			t.Logf("start command: %+v", cmd)
		}
	}()
	waitFor(t, 20*time.Second, "the held start's outcome", func() bool {
		return s.do("GET", "/api/v1/commands/"+startID, nil, &cmd) == 200 && cmd.result(a) == "conflict" && cmd.result(b) == "succeeded"
	})
	var conflicts struct {
		Conflicts []conflictView `json:"conflicts"`
	}
	waitFor(t, 10*time.Second, "the conflict reported", func() bool {
		return s.do("GET", "/api/v1/conflicts", nil, &conflicts) == 200 && len(conflicts.Conflicts) == 1
	})
	cf := conflicts.Conflicts[0]
	if cf.MinerID != a || cf.CommandID != startID || cf.Node != s.nodeID || cf.Field != "mining" || cf.Action != "start" ||
		cf.Status != "open" || cf.Reason != "local action while offline" || !strings.Contains(cf.Message, stopID) {
		t.Fatalf("conflict %+v", cf)
	}
	if n := writesSince(s.fleet, "resume", before)[b]; n != 1 {
		t.Fatalf("%s got %d resume writes, want 1 (its part of the start ran)", b, n)
	}
	time.Sleep(time.Second) // several polls: nothing resumes the miner
	if ms[0].Snapshot().Mining {
		t.Fatalf("%s resumed: the stale cloud start was applied over the local stop", a)
	}
	if n := writesSince(s.fleet, "resume", cut)[a]; n != 0 {
		t.Fatalf("%s got %d resume writes", a, n)
	}
	if n := writesSince(s.fleet, "pause", cut)[a]; n != 1 {
		t.Fatalf("%s got %d pause writes, want 1 (the same idempotency key twice runs once)", a, n)
	}

	// Non-conflicting cloud commands still run: a stop on c, issued after reconnect.
	c2 := s.command("stop", c)
	waitFor(t, 15*time.Second, "the cloud stop on "+c, func() bool {
		var v cloudCommand
		return s.do("GET", "/api/v1/commands/"+c2, nil, &v) == 200 && v.result(c) == "succeeded"
	})
	waitFor(t, 10*time.Second, c+" stopped", func() bool { return !ms[2].Snapshot().Mining })

	// The local stop reached the cloud's audit; resolving with apply re-issues the start, which now runs.
	waitFor(t, 15*time.Second, "the local stop in the cloud audit", func() bool {
		for _, r := range s.localAudit() {
			if r.CommandID == stopID {
				return true
			}
		}
		return false
	})
	var resolved conflictView
	if st := s.do("POST", "/api/v1/conflicts/"+cf.ID+"/resolve", map[string]string{"resolution": "apply"}, &resolved); st != 200 ||
		resolved.Status != "applied" || resolved.Reissued == "" {
		t.Fatalf("resolve: %d %+v", st, resolved)
	}
	waitFor(t, 15*time.Second, "the re-issued start", func() bool {
		var v cloudCommand
		return s.do("GET", "/api/v1/commands/"+resolved.Reissued, nil, &v) == 200 && v.result(a) == "succeeded"
	})
	waitFor(t, 10*time.Second, a+" mining again", func() bool { return ms[0].Snapshot().Mining })
	if st := s.do("POST", "/api/v1/conflicts/"+cf.ID+"/resolve", map[string]string{"resolution": "discard"}, nil); st != http.StatusConflict {
		t.Fatalf("resolve twice: %d", st)
	}
	if st := s.do("POST", "/api/v1/conflicts/"+cf.ID+"/resolve", map[string]string{"resolution": "maybe"}, nil); st != http.StatusBadRequest {
		t.Fatalf("bad resolution: %d", st)
	}
	if st := s.do("POST", "/api/v1/conflicts/cf-nope/resolve", map[string]string{"resolution": "apply"}, nil); st != http.StatusNotFound {
		t.Fatalf("unknown conflict: %d", st)
	}
	if st := s.do("GET", "/api/v1/conflicts?status=bogus", nil, nil); st != http.StatusBadRequest {
		t.Fatalf("bad status filter: %d", st)
	}
	if n := slices.IndexFunc(s.localAudit(), func(r localAuditView) bool { return r.CommandID == stopID }); n < 0 {
		t.Fatal("local stop missing from the audit")
	}
}
