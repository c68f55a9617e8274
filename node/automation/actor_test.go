package automation

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// node is a node with no cloud at all: a site, its CurtailActor and AutomationActor on one fake clock, the
// policy only in the node's store.
type node struct {
	t       *testing.T
	sys     *actor.ActorSystem
	clk     *clock.Fake
	s       *site
	keys    keys
	store   *MemoryPolicyStore
	guard   *PoolGuard
	reg     *prometheus.Registry
	curtail *actor.PID
	auto    *actor.PID
	log     *slog.Logger

	mu       sync.Mutex
	audits   []*pb.AuditRecord
	inactive atomic.Bool // Env.Active says no (a pair's standby)
}

func newNode(t *testing.T, start time.Time, n int, stored *SignedPolicy, k keys) *node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	nd := &node{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(start), s: newSite(n, start), keys: k,
		store: &MemoryPolicyStore{}, guard: NewPoolGuard(), reg: prometheus.NewRegistry(), log: log}
	if stored != nil {
		_ = nd.store.SavePolicy(stored)
	}
	cmd := curtail.CommanderFunc(func(c curtail.Command, replyTo *actor.PID) {
		for _, r := range nd.s.apply(nd.clk.Now(), c) {
			nd.sys.Root.Send(replyTo, &miner.Result{CommandID: c.CommandID, Result: r})
		}
	})
	snaps := curtail.SnapshotsFunc(func() []curtail.MinerSnapshot { return nd.s.snapshots(nd.clk.Now()) })
	ccfg := curtail.DefaultConfig()
	ccfg.SettleTime = 20 * time.Second
	nd.curtail = nd.sys.Root.Spawn(curtail.Props(ccfg, curtail.Env{NodeID: "n1", Commander: cmd, Snapshots: snaps, Clock: nd.clk, Logger: log}))
	acfg := DefaultConfig()
	acfg.NodeID, acfg.Site, acfg.TickInterval = "n1", "site-a", 30*time.Second
	nd.auto = nd.sys.Root.Spawn(Props(acfg, Env{Commander: cmd, Snapshots: snaps, Curtail: nd.curtail, Keys: k.ring, Store: nd.store,
		PoolGuard: nd.guard, Clock: nd.clk, Metrics: NewMetrics(nd.reg), Logger: log, Active: func() bool { return !nd.inactive.Load() },
		Auditor: AuditorFunc(func(r *pb.AuditRecord) { nd.mu.Lock(); nd.audits = append(nd.audits, r); nd.mu.Unlock() })}))
	t.Cleanup(func() {
		_ = nd.sys.Root.StopFuture(nd.auto).Wait()
		_ = nd.sys.Root.StopFuture(nd.curtail).Wait()
		nd.sys.Shutdown()
	})
	nd.sync()
	return nd
}

// sync waits until both actors handled what the clock sent them (automation first: it may message curtail).
func (nd *node) sync() (Status, curtail.Status) {
	nd.t.Helper()
	a, err := actors.Request[Status](nd.sys.Root, nd.auto, &StatusRequest{}, 5*time.Second)
	if err != nil {
		nd.t.Fatal(err)
	}
	c, err := actors.Request[curtail.Status](nd.sys.Root, nd.curtail, &curtail.StatusRequest{}, 5*time.Second)
	if err != nil {
		nd.t.Fatal(err)
	}
	return a, c
}

// advanceTo fires every timer up to t at its own instant, letting the actors handle each.
func (nd *node) advanceTo(t time.Time) {
	for {
		d, ok := nd.clk.NextDeadline()
		if !ok || d.After(t) {
			nd.clk.Set(t)
			nd.sync()
			return
		}
		nd.clk.Set(d)
		nd.sync()
	}
}

func (nd *node) auditsWhere(f func(*pb.AuditRecord) bool) []*pb.AuditRecord {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	var out []*pb.AuditRecord
	for _, r := range nd.audits {
		if f(r) {
			out = append(out, r)
		}
	}
	return out
}

// With no cloud at all, from the policy in its store alone, the node's overheat rule fires and its schedule
// starts and ends a curtailment event on time — the day New York springs forward.
func TestNoCloudOverheatAndScheduleOnTime(t *testing.T) {
	k := newKeys(t, "org-1")
	p := samplePolicy(7)
	sp, err := SignPolicy(p, k.issuer, t0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 8, 20, 50, 0, 0, time.UTC) // 16:50 EDT
	nd := newNode(t, start, 40, sp, k)
	if st, _ := nd.sync(); st.PolicyVersion != 7 || st.PolicyError != "" {
		t.Fatalf("policy not loaded from the store: %+v", st)
	}
	if ok, _ := nd.guard.Allows("stratum+tcp://evil.example.net:3333"); ok {
		t.Fatal("pool guard not armed from the stored policy")
	}

	// Overheat.
	nd.s.set("m-0007", func(m *simMiner) { m.tempC = 96 })
	nd.advanceTo(start.Add(30 * time.Second))
	hot := nd.auditsWhere(func(r *pb.AuditRecord) bool { return r.GetActor() == "automation:overheat-1" })
	if len(hot) != 1 || !hot[0].GetLocalOrigin() || hot[0].GetMinerIds()[0] != "m-0007" || hot[0].GetNodeId() != "n1" ||
		hot[0].GetCode() != pb.ResultCode_RESULT_CODE_RUNNING || !strings.Contains(hot[0].GetMessage(), "96.0") {
		t.Fatalf("overheat audit %+v", hot)
	}
	if nd.s.commandsOf("m-0007", pb.Action_ACTION_CURTAIL) != 1 || nd.s.miners["m-0007"].state != pb.MinerState_MINER_STATE_CURTAILED {
		t.Fatal("overheat rule did not curtail the miner")
	}

	// Schedule: 17:00–21:00 America/New_York, 50 kW.
	open, shut := time.Date(2026, 3, 8, 21, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 1, 0, 0, 0, time.UTC)
	nd.advanceTo(open.Add(-time.Second))
	if _, c := nd.sync(); c.Phase != curtail.PhaseIdle {
		t.Fatalf("curtailing before the window: %+v", c)
	}
	nd.advanceTo(open)
	_, c := nd.sync()
	if c.Phase != curtail.PhaseCurtailing || !c.StartedAt.Equal(open) || c.TargetKW != 50 || c.Event.ID != ScheduleEventID("evening", open) {
		t.Fatalf("at 17:00 EDT: %+v", c)
	}
	nd.advanceTo(open.Add(10 * time.Minute))
	if _, c := nd.sync(); !c.Achieved {
		t.Fatalf("schedule event not achieved: %+v", c)
	}
	nd.advanceTo(shut.Add(-time.Second))
	if _, c := nd.sync(); c.Phase != curtail.PhaseCurtailing {
		t.Fatalf("ended early: %+v", c)
	}
	nd.advanceTo(shut)
	if _, c := nd.sync(); c.Phase != curtail.PhaseReleasing {
		t.Fatalf("at 21:00 EDT: %+v", c)
	}
	nd.advanceTo(shut.Add(30 * time.Minute))
	_, c = nd.sync()
	if c.Phase != curtail.PhaseIdle || c.Last == nil || c.Last.Result != "completed" {
		t.Fatalf("after the window: %+v", c)
	}
	sched := nd.auditsWhere(func(r *pb.AuditRecord) bool { return r.GetActor() == "automation:evening" })
	if len(sched) != 2 || sched[0].GetAtUnixMs() != open.UnixMilli() || sched[1].GetAtUnixMs() != shut.UnixMilli() ||
		!strings.Contains(sched[0].GetMessage(), "start_event") || !strings.Contains(sched[1].GetMessage(), "stop_event") {
		t.Fatalf("schedule audits %+v", sched)
	}
	// Only m-0007 was still curtailed by the overheat rule until it cooled; now cool it and it resumes.
	nd.s.set("m-0007", func(m *simMiner) { m.tempC = 60 })
	nd.advanceTo(shut.Add(31 * time.Minute))
	if nd.s.commandsOf("m-0007", pb.Action_ACTION_UNCURTAIL) < 1 {
		t.Fatal("cooled miner not resumed")
	}
	// Every action is audited, and counted.
	total := 0.0
	for _, rule := range []string{kindOverheat, kindSchedule} {
		for _, a := range []string{"curtail", "resume", "start_event", "stop_event"} {
			total += promtest.ToFloat64(NewMetrics(nd.reg).actions.WithLabelValues(rule, a))
		}
	}
	if int(total) != len(nd.auditsWhere(func(*pb.AuditRecord) bool { return true })) {
		t.Fatalf("%v actions counted, %d audited", total, len(nd.audits))
	}
}

func TestInstallPolicy(t *testing.T) {
	k := newKeys(t, "org-1")
	nd := newNode(t, t0, 3, nil, k)
	install := func(sp *SignedPolicy) *InstallReply {
		t.Helper()
		r, err := actors.Request[*InstallReply](nd.sys.Root, nd.auto, &InstallPolicy{Signed: sp, Source: "test"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if st, _ := nd.sync(); st.PolicyVersion != 0 {
		t.Fatal("a policy out of nowhere")
	}
	if ok, _ := nd.guard.Allows("stratum+tcp://evil.example.net:3333"); !ok {
		t.Fatal("no policy yet: nothing enforced")
	}
	v2, _ := SignPolicy(samplePolicy(2), k.issuer, t0)
	if r := install(v2); r.Err != nil || r.Version != 2 {
		t.Fatalf("%+v", r)
	}
	if r := install(v2); r.Err != nil || !r.Unchanged {
		t.Fatalf("re-sent: %+v", r)
	}
	v1, _ := SignPolicy(samplePolicy(1), k.issuer, t0)
	if r := install(v1); !errors.Is(r.Err, ErrStalePolicy) {
		t.Fatalf("older: %+v", r)
	}
	other := samplePolicy(2)
	other.Rules.Overheat[0].ThresholdC = 80
	v2b, _ := SignPolicy(other, k.issuer, t0)
	if r := install(v2b); !errors.Is(r.Err, ErrStalePolicy) {
		t.Fatalf("same version, other content: %+v", r)
	}
	if r := install(&SignedPolicy{Body: v2.Body}); !errors.Is(r.Err, ErrUnsignedPolicy) {
		t.Fatalf("unsigned: %+v", r)
	}
	bad := *v2
	bad.Body = []byte(strings.Replace(string(v2.Body), `"version":2`, `"version":9`, 1))
	if r := install(&bad); !errors.Is(r.Err, ErrBadPolicySignature) {
		t.Fatalf("tampered: %+v", r)
	}
	if got := promtest.ToFloat64(NewMetrics(nd.reg).refusals.WithLabelValues("stale")); got != 2 {
		t.Fatalf("stale refusals %v", got)
	}
	nd.store.Err = errors.New("disk full")
	v3, _ := SignPolicy(samplePolicy(3), k.issuer, t0)
	if r := install(v3); r.Err == nil {
		t.Fatal("installed a policy the store could not keep")
	}
	nd.store.Err = nil
	if r := install(v3); r.Err != nil {
		t.Fatal(r.Err)
	}
	if st, _ := nd.sync(); st.PolicyVersion != 3 || len(st.TrustedPools) != 1 {
		t.Fatalf("%+v", st)
	}
	if ok, why := nd.guard.Allows("stratum+tcp://evil.example.net:3333"); ok || !strings.Contains(why, "v3") {
		t.Fatal(why)
	}

	// A node restarted from the same store runs the same policy; a tampered store installs nothing.
	sp, _ := nd.store.LoadPolicy()
	nd2 := newNode(t, t0, 3, sp, k)
	if st, _ := nd2.sync(); st.PolicyVersion != 3 {
		t.Fatalf("%+v", st)
	}
	tampered := *sp
	tampered.Body = []byte(strings.Replace(string(sp.Body), `"threshold_c":90`, `"threshold_c":150`, 1))
	nd3 := newNode(t, t0, 3, &tampered, k)
	if st, _ := nd3.sync(); st.PolicyVersion != 0 || !strings.Contains(st.PolicyError, "bad policy signature") {
		t.Fatalf("%+v", st)
	}
}
