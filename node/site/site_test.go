package site

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// results records what miners answer to a Dispatch.
type results struct {
	mu  sync.Mutex
	got []*miner.Result
}

type dispatchVia struct {
	site *actor.PID
	d    *Dispatch
}

func (r *results) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case dispatchVia:
		ctx.Request(m.site, m.d)
	case *miner.Result:
		r.mu.Lock()
		r.got = append(r.got, m)
		r.mu.Unlock()
	}
}

func (r *results) byMiner() map[string]pb.ResultCode {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]pb.ResultCode{}
	for _, x := range r.got {
		out[x.Result.GetMinerId()] = x.Result.GetCode()
	}
	return out
}

type harness struct {
	t       *testing.T
	sys     *actor.ActorSystem
	clk     *clock.Fake
	fleet   *drivertest.Fleet
	devices []*pb.Device
	pid     *actor.PID
	lim     *miner.Limiter
	metrics *Metrics
	res     *results
	resPID  *actor.PID
	cfg     Config
}

func newHarness(t *testing.T, n int) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	fleet, devs := drivertest.NewFleet(n)
	h := &harness{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(time.Unix(1_700_000_000, 0)), fleet: fleet, devices: devs,
		lim: miner.NewLimiter(256, nil), metrics: NewMetrics(prometheus.NewRegistry()), res: &results{}, cfg: DefaultConfig()}
	h.cfg.Supervisor.InitialBackoff = 0
	h.resPID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.res }))
	h.pid = h.sys.Root.Spawn(Props(h.cfg, Env{NodeID: "n1", Devices: devs, Factory: fleet.Factory, Limiter: h.lim,
		Clock: h.clk, Metrics: h.metrics, Logger: log}))
	t.Cleanup(func() {
		_ = h.sys.Root.StopFuture(h.pid).Wait()
		h.lim.Wait()
		_ = h.sys.Root.StopFuture(h.resPID).Wait()
		h.sys.Shutdown()
	})
	testutil.Eventually(t, "first ticks armed", func() bool { return h.clk.Pending() >= n })
	return h
}

func (h *harness) list() []miner.Status {
	h.t.Helper()
	l, err := actors.Request[*List](h.sys.Root, h.pid, &ListRequest{}, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return l.Miners
}

func (h *harness) pollAll() {
	h.t.Helper()
	before := map[string]uint64{}
	l := h.list()
	for _, s := range l {
		before[s.MinerID] = s.Polls
	}
	// Every miner, including ones just spawned, has armed its next tick: the advance reaches all of them.
	testutil.Eventually(h.t, "ticks armed", func() bool { return h.clk.Pending() >= len(l) })
	h.clk.Advance(h.cfg.Miner.PollInterval + h.cfg.Miner.PollJitter)
	testutil.WaitFor(h.t, 30*time.Second, "every miner polled", func() bool {
		for _, s := range h.list() {
			if s.Polls <= before[s.MinerID] {
				return false
			}
		}
		return true
	})
}

func (h *harness) gauge(state string) float64 {
	return promtest.ToFloat64(h.metrics.miners.WithLabelValues(state))
}

func TestListIsTheReadModel(t *testing.T) {
	h := newHarness(t, 50)
	l := h.list()
	if len(l) != 50 || !slices.IsSortedFunc(l, func(a, b miner.Status) int { return cmpString(a.MinerID, b.MinerID) }) {
		t.Fatalf("list of %d, sorted %v", len(l), l[0].MinerID)
	}
	if h.gauge("unspecified") != 50 {
		t.Fatalf("gauge unspecified %v before the first poll", h.gauge("unspecified"))
	}
	h.pollAll()
	for _, s := range h.list() {
		if s.State != pb.MinerState_MINER_STATE_MINING || s.Sample == nil || s.Device == nil {
			t.Fatalf("%s: %+v", s.MinerID, s)
		}
	}
	if h.gauge("mining") != 50 || h.gauge("unspecified") != 0 {
		t.Fatalf("gauge mining %v unspecified %v", h.gauge("mining"), h.gauge("unspecified"))
	}
	st, err := actors.Request[miner.Status](h.sys.Root, h.pid, &StatusRequest{MinerID: "m-7"}, time.Second)
	if err != nil || st.MinerID != "m-7" || st.Sample == nil {
		t.Fatalf("status m-7: %+v, %v", st, err)
	}
	if _, err := actors.Request[miner.Status](h.sys.Root, h.pid, &StatusRequest{MinerID: "nope"}, time.Second); err == nil {
		t.Fatal("unknown miner answered")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDeviceSetChanges(t *testing.T) {
	h := newHarness(t, 3)
	h.pollAll()
	moved := &pb.Device{MinerId: "m-1", Address: "10.9.9.9:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
	added := &pb.Device{MinerId: "m-new", Address: "10.9.9.10:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
	h.sys.Root.Send(h.pid, &pb.HelloAck{Devices: []*pb.Device{h.devices[0], moved, added}}) // m-2 removed
	testutil.Eventually(t, "new set", func() bool {
		var ids []string
		for _, s := range h.list() {
			ids = append(ids, s.MinerID)
		}
		return slices.Equal(ids, []string{"m-0", "m-1", "m-new"})
	})
	if s := h.list()[1]; s.Device.GetAddress() != "10.9.9.9:4028" || s.Polls != 0 {
		t.Fatalf("m-1 with a new address must be a fresh miner actor: %+v", s)
	}
	testutil.Eventually(t, "gauge", func() bool { return h.gauge("mining")+h.gauge("unspecified") == 3 })
	testutil.Eventually(t, "m-2 stopped polling", func() bool { return h.fleet.Get("m-2").Closed() == 1 })
	polls := h.fleet.Get("m-2").Polls()
	h.pollAll()
	if h.fleet.Get("m-2").Polls() != polls {
		t.Fatal("a removed miner is still polled")
	}
}

func TestDispatchRoutesByID(t *testing.T) {
	h := newHarness(t, 4)
	h.sys.Root.Send(h.resPID, dispatchVia{site: h.pid, d: &Dispatch{CommandID: "c1", MinerIDs: []string{"m-0", "m-2", "ghost"},
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_BLINK}}})
	testutil.Eventually(t, "3 answers", func() bool { return len(h.res.byMiner()) == 3 })
	got := h.res.byMiner()
	if got["m-0"] != pb.ResultCode_RESULT_CODE_SUCCEEDED || got["m-2"] != pb.ResultCode_RESULT_CODE_SUCCEEDED || got["ghost"] != pb.ResultCode_RESULT_CODE_UNKNOWN_MINER {
		t.Fatalf("answers %v", got)
	}
	if len(h.fleet.Get("m-1").Calls()) != 0 || len(h.fleet.Get("m-0").Calls()) != 1 {
		t.Fatal("command went to the wrong miner")
	}
}

func TestPanickingMinerIsRestartedAlone(t *testing.T) {
	h := newHarness(t, 5)
	h.pollAll()
	h.fleet.Get("m-2").PanicTimes(1)
	before := map[string]int64{}
	for _, d := range h.devices {
		before[d.GetMinerId()] = h.fleet.Get(d.GetMinerId()).Polls()
	}
	for range 3 {
		h.clk.Advance(h.cfg.Miner.PollInterval + h.cfg.Miner.PollJitter)
		time.Sleep(20 * time.Millisecond)
	}
	testutil.Eventually(t, "m-2 polls again", func() bool {
		h.clk.Advance(500 * time.Millisecond) // the restarted actor arms its first tick when it gets to it
		s, err := actors.Request[miner.Status](h.sys.Root, h.pid, &StatusRequest{MinerID: "m-2"}, time.Second)
		return err == nil && s.Polls > 0 && s.Sample.GetPollError() == ""
	})
	for _, d := range h.devices {
		id := d.GetMinerId()
		if got := h.fleet.Get(id).Polls() - before[id]; got < 2 {
			t.Fatalf("%s polled %d times", id, got)
		}
	}
}

func TestListTenThousandMiners(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 miners")
	}
	const n = 10_000
	h := newHarness(t, n)
	h.pollAll()
	start := time.Now()
	const lists = 20
	for range lists {
		if l := h.list(); len(l) != n {
			t.Fatalf("%d miners listed", len(l))
		}
	}
	per := time.Since(start) / lists
	t.Logf("listing %d miners: %s per list", n, per)
	if per > 500*time.Millisecond {
		t.Fatalf("listing %d miners took %s", n, per)
	}
	if h.fleet.Violations() != 0 {
		t.Fatal("driver contract broken")
	}
	_ = fmt.Sprint()
}
