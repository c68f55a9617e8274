package gate

import (
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

// watchedLog is the real store's local log, recording how many dispatches the site had seen when each
// command was persisted (it must be none: persisted before it runs).
type watchedLog struct {
	*store.Badger
	site *fakeSite

	mu                 sync.Mutex
	dispatchesAtCreate []int
}

func (w *watchedLog) CreateLocal(e *pb.LocalLogEntry) (*pb.LocalLogEntry, error) {
	w.mu.Lock()
	w.dispatchesAtCreate = append(w.dispatchesAtCreate, w.site.count())
	w.mu.Unlock()
	return w.Badger.CreateLocal(e)
}

func (h *harness) startLocalGate(local *LocalEnv) {
	h.stopGate()
	h.gate = h.sys.Root.Spawn(Props(h.cfg, Env{Store: h.st, Site: h.sitePID, Sink: h.cloudPID, Owned: []string{"m-1", "m-2", "m-3"},
		Local: local, Clock: h.clk, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))}))
}

func newLocalHarness(t *testing.T) (*harness, *watchedLog) {
	t.Helper()
	st, err := store.Open(store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, st, st.Close, nil)
	wl := &watchedLog{Badger: st, site: h.site}
	c, err := hlc.New(hlc.DefaultConfig("n1"), h.clk)
	if err != nil {
		t.Fatal(err)
	}
	h.startLocalGate(&LocalEnv{Log: wl, HLC: c})
	return h, wl
}

func (h *harness) submit(m *LocalSubmit) (*LocalSubmitted, error) {
	h.t.Helper()
	return actors.Request[*LocalSubmitted](h.sys.Root, h.gate, m, 5*time.Second)
}

func (h *harness) localEvents() []*pb.Event {
	h.cloud.mu.Lock()
	defer h.cloud.mu.Unlock()
	var out []*pb.Event
	for _, e := range h.cloud.events {
		if e.GetKind() == pb.EventKind_EVENT_KIND_LOCAL_COMMAND {
			out = append(out, e)
		}
	}
	return out
}

func localEntry(t *testing.T, st *store.Badger, id string) *pb.LocalLogEntry {
	t.Helper()
	e, err := st.LocalCommand(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stopSpec() *pb.CommandSpec { return &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING} }

func TestLocalCommandStampedPersistedRunReported(t *testing.T) {
	h, wl := newLocalHarness(t)
	r, err := h.submit(&LocalSubmit{IdempotencyKey: "k1", Actor: "local:admin", All: true, Spec: stopSpec()})
	if err != nil || r.Existing {
		t.Fatalf("submit: %+v %v", r, err)
	}
	testutil.Eventually(t, "the local command's event", func() bool { return len(h.localEvents()) == 1 })
	if got := wl.dispatchesAtCreate; !slices.Equal(got, []int{0}) {
		t.Fatalf("the site had seen %v dispatches when the command was persisted; want it persisted before it runs", got)
	}
	d := h.site.dispatches[0]
	if !slices.Equal(d.MinerIDs, []string{"m-1", "m-2", "m-3"}) || d.IdempotencyKey != "local/k1" || d.CommandID != r.CommandID {
		t.Fatalf("dispatch %+v", d)
	}
	e := localEntry(t, wl.Badger, r.CommandID)
	c := e.GetCommand()
	if !e.GetDone() || !e.GetReported() || !c.GetLocalOrigin() || c.GetActor() != "local:admin" || c.GetIdempotencyKey() != "k1" ||
		c.GetHlc().GetWallMs() != h.clk.Now().UnixMilli() || c.GetHlc().GetNodeId() != "n1" || c.GetLeaseEpoch() != 0 || len(c.GetResults()) != 3 {
		t.Fatalf("persisted entry %v", e)
	}
	ev := h.localEvents()[0]
	if !proto.Equal(ev.GetLocalCommand(), c) || ev.GetEventId() != "local/n1/"+r.CommandID {
		t.Fatalf("event %v, want the persisted command %v", ev, c)
	}
}

func TestLocalIdempotencyKeyRunsOnce(t *testing.T) {
	h, wl := newLocalHarness(t)
	m := &LocalSubmit{IdempotencyKey: "k1", Actor: "local:admin", MinerIDs: []string{"m-2", "m-1"}, Spec: stopSpec()}
	first, err := h.submit(m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.submit(m)
	if err != nil || !again.Existing || again.CommandID != first.CommandID {
		t.Fatalf("same key again: %+v %v; want the first command %s, nothing run", again, err, first.CommandID)
	}
	_, err = h.submit(&LocalSubmit{IdempotencyKey: "k1", Actor: "local:admin", MinerIDs: []string{"m-1"},
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_START_MINING}})
	if !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Fatalf("same key, other command: %v", err)
	}
	testutil.Eventually(t, "the command finished", func() bool { return len(h.localEvents()) == 1 })
	// After a restart the key is still taken: the log is on disk.
	h.startLocalGate(&LocalEnv{Log: wl, HLC: mustHLC(t, h.clk)})
	if again, err := h.submit(m); err != nil || !again.Existing || again.CommandID != first.CommandID {
		t.Fatalf("same key after restart: %+v %v", again, err)
	}
	if n := h.site.count(); n != 1 {
		t.Fatalf("%d dispatches, want 1", n)
	}
	// The last commands reported before a restart are sent again (the outbox may not have kept them); the
	// cloud keeps each command id once.
	testutil.Eventually(t, "the recent command re-sent at start", func() bool {
		evs := h.localEvents()
		return len(evs) == 2 && evs[1].GetLocalCommand().GetCommandId() == first.CommandID
	})
	n := 0
	_ = wl.LocalCommands(false, func(*pb.LocalLogEntry) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d commands in the log, want 1", n)
	}
}

func mustHLC(t *testing.T, c clock.Clock) *hlc.Clock {
	t.Helper()
	h, err := hlc.New(hlc.DefaultConfig("n1"), c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLocalCommandRefusals(t *testing.T) {
	h, _ := newLocalHarness(t)
	for name, m := range map[string]*LocalSubmit{
		"foreign miner":      {IdempotencyKey: "a", MinerIDs: []string{"m-1", "elsewhere"}, Spec: stopSpec()},
		"no miners":          {IdempotencyKey: "b", Spec: stopSpec()},
		"no action":          {IdempotencyKey: "c", MinerIDs: []string{"m-1"}, Spec: &pb.CommandSpec{}},
		"no idempotency key": {MinerIDs: []string{"m-1"}, Spec: stopSpec()},
	} {
		if _, err := h.submit(m); !errors.Is(err, ErrLocalRefused) {
			t.Errorf("%s: %v, want ErrLocalRefused", name, err)
		}
	}
	h.cfg.EpochCheck = func(uint64) error { return ErrWrongEpoch }
	h.startLocalGate(&LocalEnv{Log: h.st.(*store.Badger), HLC: mustHLC(t, h.clk)})
	if _, err := h.submit(&LocalSubmit{IdempotencyKey: "d", MinerIDs: []string{"m-1"}, Spec: stopSpec()}); !errors.Is(err, ErrLocalRefused) ||
		!errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("fenced node: %v", err)
	}
	if h.site.count() != 0 {
		t.Fatal("a refused local command ran")
	}
	h.startGate() // no local path at all
	if _, err := h.submit(&LocalSubmit{IdempotencyKey: "e", MinerIDs: []string{"m-1"}, Spec: stopSpec()}); !errors.Is(err, ErrLocalUnsupported) {
		t.Fatalf("gate without a local log: %v", err)
	}
}

// A stop while a local command runs closes it (missing miners FAILED); the next start reports it and keeps
// the HLC above it even when the wall clock went back.
func TestLocalCommandInterruptedThenReportedWithHLCKeptMonotonic(t *testing.T) {
	h, wl := newLocalHarness(t)
	h.site.mu.Lock()
	h.site.silent = map[string]bool{"m-2": true}
	h.site.mu.Unlock()
	r, err := h.submit(&LocalSubmit{IdempotencyKey: "k1", Actor: "local:admin", MinerIDs: []string{"m-1", "m-2"}, Spec: stopSpec()})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "dispatched", func() bool { return h.site.count() == 1 })
	h.stopGate()
	e := localEntry(t, wl.Badger, r.CommandID)
	if !e.GetDone() || e.GetReported() || len(e.GetCommand().GetResults()) != 2 {
		t.Fatalf("interrupted entry %v", e)
	}
	var codes []pb.ResultCode
	for _, res := range e.GetCommand().GetResults() {
		codes = append(codes, res.GetCode())
	}
	if !slices.Equal(codes, []pb.ResultCode{pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_FAILED}) {
		t.Fatalf("codes %v", codes)
	}
	before := len(h.localEvents())
	earlier := clock.NewFake(h.clk.Now().Add(-time.Hour)) // the wall clock stepped back an hour
	h.startLocalGate(&LocalEnv{Log: wl, HLC: mustHLC(t, earlier)})
	testutil.Eventually(t, "reported at start", func() bool { return len(h.localEvents()) == before+1 })
	if !localEntry(t, wl.Badger, r.CommandID).GetReported() {
		t.Fatal("not marked reported")
	}
	r2, err := h.submit(&LocalSubmit{IdempotencyKey: "k2", MinerIDs: []string{"m-1"}, Spec: stopSpec()})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := localEntry(t, wl.Badger, r.CommandID).GetCommand().GetHlc(), localEntry(t, wl.Badger, r2.CommandID).GetCommand().GetHlc()
	if hlc.Compare(h2, h1) <= 0 {
		t.Fatalf("HLC after restart %v is not after %v", hlc.Format(h2), hlc.Format(h1))
	}
}

func startCommand(id string, seq uint64, a pb.Action, wm *pb.HLC, ids ...string) *pb.ControlCommand {
	c := command(id, "n1", seq, ids...)
	p, _ := proto.Marshal(&pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: a}})
	c.Payload, c.LocalWatermark = p, wm
	return c
}

func (h *harness) finalReport(id string) *pb.CommandResultReport {
	h.t.Helper()
	var out *pb.CommandResultReport
	testutil.Eventually(h.t, "final report of "+id, func() bool {
		for _, r := range h.cloud.reportsFor(id) {
			if r.GetDone() {
				out = r
				return true
			}
		}
		return false
	})
	return out
}

func codesByMiner(r *pb.CommandResultReport) map[string]pb.ResultCode {
	out := map[string]pb.ResultCode{}
	for _, res := range r.GetResults() {
		out[res.GetMinerId()] = res.GetCode()
	}
	return out
}

func TestCloudCommandsReconciledWithTheLocalLog(t *testing.T) {
	h, wl := newLocalHarness(t)
	r, err := h.submit(&LocalSubmit{IdempotencyKey: "k1", Actor: "local:admin", MinerIDs: []string{"m-1"}, Spec: stopSpec()})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "local stop finished", func() bool { return len(h.localEvents()) == 1 })
	local := localEntry(t, wl.Badger, r.CommandID).GetCommand().GetHlc()

	// Issued before the cloud saw the local stop: start is held on m-1, runs on m-2.
	if a := h.send(startCommand("c1", 1, pb.Action_ACTION_START_MINING, nil, "m-1", "m-2")); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("c1 ack %v", a)
	}
	rep := h.finalReport("c1")
	if got := codesByMiner(rep); got["m-1"] != pb.ResultCode_RESULT_CODE_CONFLICT || got["m-2"] != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("c1 results %v", rep)
	}
	if d := h.site.dispatches[len(h.site.dispatches)-1]; !slices.Equal(d.MinerIDs, []string{"m-2"}) {
		t.Fatalf("c1 dispatched to %v, want m-2 only", d.MinerIDs)
	}

	// Only m-1: the whole command is held, answered CONFLICT, with a final report naming why.
	n := h.site.count()
	if a := h.send(startCommand("c2", 2, pb.Action_ACTION_START_MINING, nil, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_CONFLICT {
		t.Fatalf("c2 ack %v", a)
	}
	rep = h.finalReport("c2")
	if got := codesByMiner(rep); got["m-1"] != pb.ResultCode_RESULT_CODE_CONFLICT || len(got) != 1 {
		t.Fatalf("c2 results %v", rep)
	}
	if h.site.count() != n {
		t.Fatal("a fully held command was dispatched")
	}
	if audit := h.audit(); audit[len(audit)-1].GetCode() != pb.ResultCode_RESULT_CODE_CONFLICT {
		t.Fatalf("audit %v", audit[len(audit)-1])
	}

	// A cloud stop is a safety action: it runs despite the newer local action.
	h.send(startCommand("c3", 3, pb.Action_ACTION_STOP_MINING, nil, "m-1"))
	if got := codesByMiner(h.finalReport("c3")); got["m-1"] != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("c3 %v", got)
	}

	// Issued after the cloud saw the local stop (watermark at its HLC): runs.
	h.send(startCommand("c4", 4, pb.Action_ACTION_START_MINING, local, "m-1"))
	if got := codesByMiner(h.finalReport("c4")); got["m-1"] != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("c4 %v", got)
	}

	// The index survives a restart: a stale start is held again.
	h.startLocalGate(&LocalEnv{Log: wl, HLC: mustHLC(t, h.clk)})
	if a := h.send(startCommand("c5", 5, pb.Action_ACTION_START_MINING, nil, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_CONFLICT {
		t.Fatalf("c5 after restart %v", a)
	}
}
