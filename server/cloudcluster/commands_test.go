package cloudcluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

const orgToken = "cluster-admin-token"

// orgCluster is members on one Postgres with their HTTP endpoints, and miner nodes of org "org-a" spread
// over the members' gateways (node i streams to member i%members).
type orgCluster struct {
	ms    []*testMember
	http  []string // each member's /cluster/v1 base URL
	nodes []*minerNode
	st    *pgstore.Store
}

type orgClusterOpts struct {
	members, nodes, miners int
	hold                   bool
	cfg                    func(*cloudcluster.Config)
}

func startOrgCluster(t *testing.T, o orgClusterOpts) *orgCluster {
	t.Helper()
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	st := openStore(t, dsn)
	agent := cloudcluster.NewTestAgent()
	ms := startMembers(t, o.members, func(int) cloudcluster.Config {
		cfg := memberConfig(t, openStore(t, dsn))
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, agent
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		return cfg
	})
	waitMembers(t, ms, o.members)
	c := &orgCluster{ms: ms, st: st}
	for _, m := range ms {
		srv := httptest.NewServer(m.m.Handler(orgToken))
		t.Cleanup(srv.Close)
		c.http = append(c.http, srv.URL)
	}
	// The device registry: org-a's nodes and miners, and a node of org-b.
	var devices []*pb.Device
	for _, n := range []struct{ id, org string }{{"bn-0", "org-b"}} {
		if err := st.PutNodeRecord(&pb.NodeRecord{NodeId: n.id, OrgId: n.org}); err != nil {
			t.Fatal(err)
		}
		devices = append(devices, &pb.Device{MinerId: n.id + "-m0", NodeId: n.id})
	}
	addrs := func() []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.gwAddr)
		}
		return out
	}
	for i := range o.nodes {
		id := fmt.Sprintf("on-%02d", i)
		if err := st.PutNodeRecord(&pb.NodeRecord{NodeId: id, OrgId: "org-a"}); err != nil {
			t.Fatal(err)
		}
		var miners []string
		for k := range o.miners {
			miners = append(miners, fmt.Sprintf("%s-m%d", id, k))
			devices = append(devices, &pb.Device{MinerId: miners[k], NodeId: id})
		}
		c.nodes = append(c.nodes, startMinerNode(t, id, miners, o.hold, addrs, i%o.members))
	}
	if err := st.Apply(store.Batch{Devices: devices}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		n.waitConnected(t, 15*time.Second)
	}
	return c
}

func (c *orgCluster) miners() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.miners...)
	}
	return out
}

// call makes one HTTP request to a member's cluster endpoints and decodes the JSON answer into out.
func call(t *testing.T, method, url, token string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type issueAnswer struct {
	CommandID string `json:"command_id"`
	Existing  bool   `json:"existing"`
	OrgMember string `json:"org_member"`
	Parts     []struct {
		Node     string   `json:"node"`
		MinerIDs []string `json:"miner_ids"`
		Seq      uint64   `json:"seq"`
		Error    string   `json:"error"`
	} `json:"parts"`
	Error         string   `json:"error"`
	UnknownMiners []string `json:"unknown_miners"`
}

type commandAnswer struct {
	CommandID string            `json:"command_id"`
	Org       string            `json:"org"`
	Status    string            `json:"status"`
	Active    bool              `json:"active"`
	Summary   map[string]int    `json:"summary"`
	NodeSeqs  map[string]uint64 `json:"node_seqs"`
	Results   []struct {
		MinerID string `json:"miner_id"`
		Status  string `json:"status"`
		Code    string `json:"code"`
	} `json:"results"`
}

func issueBody(key, action string, miners []string) []byte {
	b, _ := json.Marshal(map[string]any{"idempotency_key": key, "miner_ids": miners, "action": action})
	return b
}

// waitCommand polls GET /cluster/v1/commands/{id} on base until done says so.
func waitCommand(t *testing.T, base, id string, d time.Duration, done func(commandAnswer) bool) commandAnswer {
	t.Helper()
	deadline := time.Now().Add(d)
	var got commandAnswer
	for {
		got = commandAnswer{}
		if code := call(t, "GET", base+"/cluster/v1/commands/"+id, orgToken, nil, &got); code != http.StatusOK {
			t.Fatalf("get command %s: %d", id, code)
		}
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("command %s after %s: %+v", id, d, got)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// checkEveryMinerOnce: every miner appears exactly once in the results, with want as its status.
func checkEveryMinerOnce(t *testing.T, got commandAnswer, miners []string, want string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got.Results {
		seen[r.MinerID]++
		if r.Status != want {
			t.Fatalf("miner %s: %s (%s), want %s", r.MinerID, r.Status, r.Code, want)
		}
	}
	if len(got.Results) != len(miners) || got.Summary[want] != len(miners) {
		t.Fatalf("%d results, summary %v, for %d miners", len(got.Results), got.Summary, len(miners))
	}
	for _, m := range miners {
		if seen[m] != 1 {
			t.Fatalf("miner %s appears %d times", m, seen[m])
		}
	}
}

// checkExecutedOnce: every node executed command id exactly once and refused nothing.
func checkExecutedOnce(t *testing.T, ns []*minerNode, id string) {
	t.Helper()
	for _, n := range ns {
		ex, refused, _ := n.snapshot()
		if ex[id] != 1 || refused != 0 {
			t.Fatalf("%s executed %s %d times (all: %v), refused %d", n.id, id, ex[id], ex, refused)
		}
	}
}

func countTable(t *testing.T, st *pgstore.Store, table string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOrgCommandAcrossMembers: three members, six nodes streaming to all three, three miners each. A bulk
// command issued on member A reaches every miner, and member C shows each miner's final result exactly
// once; the same request again on member B returns the same command and nothing runs twice on the nodes;
// "get miner" on C answers through the Miner grain with the miner's latest telemetry; hostile requests get
// a clear 4xx and record nothing.
func TestOrgCommandAcrossMembers(t *testing.T) {
	skipUnderRace(t)
	c := startOrgCluster(t, orgClusterOpts{members: 3, nodes: 6, miners: 3, cfg: func(cfg *cloudcluster.Config) { cfg.MaxCommandMiners = 50 }})
	a, b, cc := c.http[0], c.http[1], c.http[2]
	miners := c.miners()
	// Telemetry of on-01's miners through member B's gateway.
	uploadTelemetry(t, c.ms[1].gwAddr, "on-01", 1, 3)

	body := issueBody("bulk-1", "reboot", miners)
	start := time.Now()
	var first issueAnswer
	if code := call(t, "POST", a+"/cluster/v1/orgs/org-a/commands", orgToken, body, &first); code != http.StatusAccepted {
		t.Fatalf("issue: %d %+v", code, first)
	}
	if first.CommandID == "" || first.Existing || len(first.Parts) != 6 {
		t.Fatalf("issue answer %+v", first)
	}
	for _, p := range first.Parts {
		if p.Seq != 1 || len(p.MinerIDs) != 3 || p.Error != "" {
			t.Fatalf("part %+v", p)
		}
	}
	got := waitCommand(t, cc, first.CommandID, 15*time.Second, func(c commandAnswer) bool { return c.Status == "succeeded" })
	t.Logf("command to %d miners behind 6 nodes on 3 members: succeeded after %s", len(miners), time.Since(start))
	checkEveryMinerOnce(t, got, miners, "succeeded")
	if got.Active || got.Org != "org-a" || len(got.NodeSeqs) != 6 {
		t.Fatalf("finished command %+v", got)
	}

	var again issueAnswer
	if code := call(t, "POST", b+"/cluster/v1/orgs/org-a/commands", orgToken, body, &again); code != http.StatusOK {
		t.Fatalf("issue again: %d %+v", code, again)
	}
	if again.CommandID != first.CommandID || !again.Existing {
		t.Fatalf("issue again answered %+v, want command %s", again, first.CommandID)
	}
	time.Sleep(300 * time.Millisecond) // anything sent twice would arrive by now
	checkExecutedOnce(t, c.nodes, first.CommandID)
	for _, n := range c.nodes {
		if last, q, err := c.st.NodeQueue(n.id); err != nil || last != 1 || len(q) != 0 {
			t.Fatalf("%s: last seq %d, %d queued (%v)", n.id, last, len(q), err)
		}
	}
	if n := countTable(t, c.st, "command_results"); n != len(miners) {
		t.Fatalf("%d result rows for %d miners", n, len(miners))
	}

	var miner struct {
		Known       bool            `json:"known"`
		Node        string          `json:"node"`
		Org         string          `json:"org"`
		GrainMember string          `json:"grain_member"`
		Latest      json.RawMessage `json:"latest"`
		InFlight    []any           `json:"in_flight"`
	}
	if code := call(t, "GET", cc+"/cluster/v1/miners/on-01-m1", orgToken, nil, &miner); code != http.StatusOK {
		t.Fatalf("get miner: %d", code)
	}
	if !miner.Known || miner.Node != "on-01" || miner.Org != "org-a" || !strings.Contains(string(miner.Latest), "on-01-m1") ||
		len(miner.InFlight) != 0 || miner.GrainMember == "" {
		t.Fatalf("miner %+v latest %s", miner, miner.Latest)
	}

	t.Run("hostile", func(t *testing.T) {
		url := a + "/cluster/v1/orgs/org-a/commands"
		many := make([]string, 51)
		for i := range many {
			many[i] = fmt.Sprintf("on-00-x%d", i)
		}
		huge := []byte(`{"action":"reboot","miner_ids":["` + strings.Repeat("x", 1<<20) + `"]}`)
		for _, tc := range []struct {
			name    string
			url     string
			token   string
			body    []byte
			code    int
			unknown []string
		}{
			{"unknown miner", url, orgToken, issueBody("", "reboot", []string{"on-00-m0", "nope-1"}), 400, []string{"nope-1"}},
			{"another org's miner", url, orgToken, issueBody("", "reboot", []string{"on-00-m0", "bn-0-m0"}), 400, []string{"bn-0-m0"}},
			{"miners of the org asked through another org", b + "/cluster/v1/orgs/org-b/commands", orgToken, issueBody("", "reboot", []string{"on-00-m0"}), 400, []string{"on-00-m0"}},
			{"malformed JSON", url, orgToken, []byte(`{"action":"reboot","miner_ids":[`), 400, nil},
			{"two objects", url, orgToken, append(issueBody("", "reboot", []string{"on-00-m0"}), []byte(`{}`)...), 400, nil},
			{"unknown field", url, orgToken, []byte(`{"action":"reboot","miner_ids":["on-00-m0"],"pools":[]}`), 400, nil},
			{"empty body", url, orgToken, []byte{}, 400, nil},
			{"unknown action", url, orgToken, issueBody("", "explode", []string{"on-00-m0"}), 400, nil},
			{"action the cluster cannot carry", url, orgToken, issueBody("", "firmware_update", []string{"on-00-m0"}), 400, nil},
			{"no miners", url, orgToken, issueBody("", "reboot", nil), 400, nil},
			{"duplicate miner", url, orgToken, issueBody("", "reboot", []string{"on-00-m0", "on-00-m0"}), 400, nil},
			{"oversized list", url, orgToken, issueBody("", "reboot", many), 400, nil},
			{"oversized body", url, orgToken, huge, 400, nil},
			{"key names another command", url, orgToken, issueBody("bulk-1", "stop", miners), 409, nil},
			{"key with other miners", url, orgToken, issueBody("bulk-1", "reboot", miners[:3]), 409, nil},
			{"bad org id", a + "/cluster/v1/orgs/%01/commands", orgToken, issueBody("", "reboot", []string{"on-00-m0"}), 400, nil},
			{"no token", url, "", issueBody("", "reboot", []string{"on-00-m0"}), 401, nil},
			{"wrong token", url, "nope", issueBody("", "reboot", []string{"on-00-m0"}), 401, nil},
		} {
			var ans issueAnswer
			code := call(t, "POST", tc.url, tc.token, tc.body, &ans)
			if code != tc.code || ans.Error == "" || !slices.Equal(ans.UnknownMiners, tc.unknown) {
				t.Errorf("%s: %d %+v, want %d (unknown %v)", tc.name, code, ans, tc.code, tc.unknown)
			}
		}
		for _, tc := range []struct {
			url  string
			code int
		}{
			{cc + "/cluster/v1/commands/nope", 404},
			{cc + "/cluster/v1/commands/%01", 400},
			{cc + "/cluster/v1/miners/nope", 404},
			{cc + "/cluster/v1/miners/%01", 400},
		} {
			var ans map[string]any
			if code := call(t, "GET", tc.url, orgToken, nil, &ans); code != tc.code || ans["error"] == nil {
				t.Errorf("GET %s: %d %v, want %d", tc.url, code, ans, tc.code)
			}
		}
		if n := countTable(t, c.st, "commands"); n != 1 {
			t.Fatalf("%d commands recorded; the refused requests must record nothing", n)
		}
		checkExecutedOnce(t, c.nodes, first.CommandID)
	})
}

// TestOrgCommandSurvivesOrgMemberStop: the member hosting the Org grain stops while the command's miners
// are still working. The command completes through the surviving members, is readable on them, and the
// request asked again on a survivor (the Org grain re-activated there from the store) returns the same
// command without running anything twice. While in flight, "get miner" lists the command.
func TestOrgCommandSurvivesOrgMemberStop(t *testing.T) {
	skipUnderRace(t)
	c := startOrgCluster(t, orgClusterOpts{members: 3, nodes: 6, miners: 2, hold: true})
	miners := c.miners()
	body := issueBody("survive-1", "curtail", miners)
	var first issueAnswer
	if code := call(t, "POST", c.http[0]+"/cluster/v1/orgs/org-a/commands", orgToken, body, &first); code != http.StatusAccepted {
		t.Fatalf("issue: %d %+v", code, first)
	}
	victim := -1
	for i, m := range c.ms {
		if m.m.ID() == first.OrgMember {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("org grain on unknown member %q", first.OrgMember)
	}
	survivor := (victim + 1) % 3
	base := c.http[survivor]
	// Every node acked (RUNNING); results held.
	waitCommand(t, base, first.CommandID, 15*time.Second, func(c commandAnswer) bool { return c.Summary["running"] == len(miners) })
	var miner struct {
		InFlight []struct {
			CommandID string `json:"command_id"`
			Result    struct {
				Status string `json:"status"`
			} `json:"result"`
		} `json:"in_flight"`
	}
	if code := call(t, "GET", base+"/cluster/v1/miners/on-03-m1", orgToken, nil, &miner); code != http.StatusOK ||
		len(miner.InFlight) != 1 || miner.InFlight[0].CommandID != first.CommandID || miner.InFlight[0].Result.Status != "running" {
		t.Fatalf("miner in flight: %d %+v", code, miner)
	}

	stopped := time.Now()
	c.ms[victim].stop(true)
	t.Logf("stopped member %d (org grain's) in %s", victim, time.Since(stopped))
	// Wait until every node's stream is attached to a live Node grain, then let the miners finish.
	ctx := context.Background()
	for _, n := range c.nodes {
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := c.ms[survivor].m.NodeStatus(ctx, n.id)
			if err == nil && st.GetConnected() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not attached after the stop: %v %v", n.id, st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range c.nodes {
		n.release()
	}
	for _, i := range []int{survivor, (victim + 2) % 3} {
		got := waitCommand(t, c.http[i], first.CommandID, 20*time.Second, func(c commandAnswer) bool { return c.Status == "succeeded" })
		checkEveryMinerOnce(t, got, miners, "succeeded")
	}
	var again issueAnswer
	if code := call(t, "POST", base+"/cluster/v1/orgs/org-a/commands", orgToken, body, &again); code != http.StatusOK ||
		again.CommandID != first.CommandID || !again.Existing || again.OrgMember == first.OrgMember {
		t.Fatalf("issue again on a survivor: %d %+v (first on %s)", code, again, first.OrgMember)
	}
	time.Sleep(300 * time.Millisecond)
	checkExecutedOnce(t, c.nodes, first.CommandID)
}

// TestOrgCommandTimesOutStragglers: the miners of a node that is offline when the command is issued are
// marked TIMEOUT at the command's deadline, although the member hosting the Org grain (and its deadline
// timer) stopped before it and no Miner grain of those miners ever ran: a survivor's command sweeper wakes
// the Org grain on a live member, which times the stragglers out. The other node's miners keep their
// results; the command ends "timeout"; when the offline node comes back, it gets the command (still in its
// queue) and its late results change nothing.
func TestOrgCommandTimesOutStragglers(t *testing.T) {
	skipUnderRace(t)
	c := startOrgCluster(t, orgClusterOpts{members: 2, nodes: 2, miners: 2,
		cfg: func(cfg *cloudcluster.Config) { cfg.CommandTimeout = 3 * time.Second }})
	offline := c.nodes[1]
	offline.stop()
	miners := c.miners()
	var first issueAnswer
	if code := call(t, "POST", c.http[1]+"/cluster/v1/orgs/org-a/commands", orgToken, issueBody("", "reboot", miners), &first); code != http.StatusAccepted {
		t.Fatalf("issue: %d %+v", code, first)
	}
	victim := 0
	if c.ms[1].m.ID() == first.OrgMember {
		victim = 1
	}
	survivor := c.http[1-victim]
	waitCommand(t, survivor, first.CommandID, 10*time.Second, func(c commandAnswer) bool { return c.Summary["succeeded"] == 2 })
	c.ms[victim].stop(true)
	got := waitCommand(t, survivor, first.CommandID, 20*time.Second, func(c commandAnswer) bool { return !c.Active })
	if got.Status != "timeout" || got.Summary["succeeded"] != 2 || got.Summary["timeout"] != 2 {
		t.Fatalf("command %+v", got)
	}
	for _, r := range got.Results {
		if want := map[bool]string{true: "succeeded", false: "timeout"}[strings.HasPrefix(r.MinerID, "on-00")]; r.Status != want {
			t.Fatalf("miner %s: %s, want %s", r.MinerID, r.Status, want)
		}
	}
	back := startMinerNode(t, offline.id, offline.miners, false, func() []string { return []string{c.ms[1-victim].gwAddr} }, 0)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ex, _, _ := back.snapshot(); ex[first.CommandID] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node back online did not get its queued command")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // its late results are forwarded by now
	again := waitCommand(t, survivor, first.CommandID, time.Second, func(commandAnswer) bool { return true })
	if again.Status != "timeout" || again.Summary["timeout"] != 2 || again.Summary["succeeded"] != 2 {
		t.Fatalf("a late result changed a final one: %+v", again)
	}
}

// TestOrgCommandsNeedSharedStore: a member on the single-member Badger store has no org command store;
// its org command endpoints answer 503 and say why.
func TestOrgCommandsNeedSharedStore(t *testing.T) {
	skipUnderRace(t)
	bs, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lease.NewBadger(bs.DB())
	if err != nil {
		t.Fatal(err)
	}
	cfg := cloudcluster.DefaultConfig()
	cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, cloudcluster.NewTestAgent()
	cfg.Port, cfg.Store, cfg.LeaseStore, cfg.Logger = testsvc.FreePort(t), cloudcluster.NewLocal(bs), ls, quiet
	ms := startMembers(t, 1, func(int) cloudcluster.Config { return cfg })
	t.Cleanup(func() { _ = bs.Close() })
	srv := httptest.NewServer(ms[0].m.Handler(orgToken))
	defer srv.Close()
	for _, r := range []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/cluster/v1/orgs/org-a/commands", issueBody("", "reboot", []string{"m1"})},
		{"GET", "/cluster/v1/commands/c1", nil},
		{"GET", "/cluster/v1/miners/m1", nil},
	} {
		var ans map[string]any
		if code := call(t, r.method, srv.URL+r.path, orgToken, r.body, &ans); code != http.StatusServiceUnavailable ||
			!strings.Contains(fmt.Sprint(ans["error"]), "shared store") {
			t.Errorf("%s %s: %d %v", r.method, r.path, code, ans)
		}
	}
}
