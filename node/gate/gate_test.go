package gate

import (
	"errors"
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
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// fakeSite records dispatches (with the seq mark on disk at that moment) and answers every miner SUCCEEDED,
// except the miners in silent.
type fakeSite struct {
	st         Store
	mu         sync.Mutex
	dispatches []*site.Dispatch
	marks      []uint64
	silent     map[string]bool
}

func (f *fakeSite) Receive(ctx actor.Context) {
	d, ok := ctx.Message().(*site.Dispatch)
	if !ok {
		return
	}
	mark, _ := f.st.SeqMark()
	f.mu.Lock()
	f.dispatches = append(f.dispatches, d)
	f.marks = append(f.marks, mark)
	silent := f.silent
	f.mu.Unlock()
	for _, id := range d.MinerIDs {
		if silent[id] {
			continue
		}
		ctx.Send(ctx.Sender(), &miner.Result{CommandID: d.CommandID, Result: &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED, Message: "ok"}})
	}
}

func (f *fakeSite) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dispatches)
}

// cloud stands in for the Uplink: it sends commands to the gate as requests and records the answers.
type cloud struct {
	mu      sync.Mutex
	acks    []*pb.CommandAck
	reports []*pb.CommandResultReport
	events  []*pb.Event
}

type send struct {
	gate *actor.PID
	cmd  *pb.ControlCommand
}

func (c *cloud) Receive(ctx actor.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := ctx.Message().(type) {
	case send:
		ctx.Request(m.gate, m.cmd)
	case *pb.CommandAck:
		c.acks = append(c.acks, m)
	case *pb.CommandResultReport:
		c.reports = append(c.reports, m)
	case *pb.Event:
		c.events = append(c.events, m)
	}
}

func (c *cloud) ack(id string) *pb.CommandAck {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.acks {
		if a.GetCommandId() == id {
			return a
		}
	}
	return nil
}

func (c *cloud) reportsFor(id string) []*pb.CommandResultReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*pb.CommandResultReport
	for _, r := range c.reports {
		if r.GetCommandId() == id {
			out = append(out, r)
		}
	}
	return out
}

type harness struct {
	t        *testing.T
	sys      *actor.ActorSystem
	clk      *clock.Fake
	st       Store
	closer   func() error
	site     *fakeSite
	cloud    *cloud
	gate     *actor.PID
	cloudPID *actor.PID
	sitePID  *actor.PID
	cfg      Config
}

func newHarness(t *testing.T, st Store, closer func() error, mutate func(*Config)) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	h := &harness{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(time.Unix(1_700_000_000, 0)), st: st, closer: closer,
		site: &fakeSite{st: st}, cloud: &cloud{}}
	h.cfg = DefaultConfig()
	h.cfg.NodeID, h.cfg.Verifier = "n1", InProcessVerifier{}
	if mutate != nil {
		mutate(&h.cfg)
	}
	h.sitePID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.site }))
	h.cloudPID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.cloud }))
	h.startGate()
	t.Cleanup(func() {
		h.stopGate()
		_ = h.sys.Root.StopFuture(h.sitePID).Wait()
		_ = h.sys.Root.StopFuture(h.cloudPID).Wait()
		h.sys.Shutdown()
		if h.closer != nil {
			_ = h.closer()
		}
	})
	return h
}

func (h *harness) startGate() {
	h.gate = h.sys.Root.Spawn(Props(h.cfg, Env{Store: h.st, Site: h.sitePID, Sink: h.cloudPID, Owned: []string{"m-1", "m-2", "m-3"},
		Clock: h.clk, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))}))
}

func (h *harness) stopGate() {
	if h.gate != nil {
		_ = h.sys.Root.PoisonFuture(h.gate).Wait()
		h.gate = nil
	}
}

func memStore(t *testing.T) (*store.Badger, func() error) {
	t.Helper()
	s, err := store.Open(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Close
}

func command(id string, node string, seq uint64, ids ...string) *pb.ControlCommand {
	p, _ := proto.Marshal(&pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}})
	return &pb.ControlCommand{CommandId: id, Actor: "user:alice", NodeId: node, MonotonicSeq: seq, KeyId: "k1",
		Signature: []byte("sig-" + id), IdempotencyKey: "idem-" + id, Payload: p}
}

func (h *harness) send(c *pb.ControlCommand) *pb.CommandAck {
	h.t.Helper()
	h.sys.Root.Send(h.cloudPID, send{gate: h.gate, cmd: c})
	var a *pb.CommandAck
	testutil.Eventually(h.t, "ack of "+c.GetCommandId(), func() bool { a = h.cloud.ack(c.GetCommandId()); return a != nil })
	return a
}

func (h *harness) audit() []*pb.AuditRecord {
	h.t.Helper()
	a, ok := h.st.(interface {
		Audit(int, int) ([]*pb.AuditRecord, error)
	})
	if !ok {
		h.t.Fatal("store has no audit reader")
	}
	recs, err := a.Audit(0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

func (h *harness) mark() uint64 {
	m, err := h.st.SeqMark()
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func TestAcceptedCommandRunsAndReports(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, nil)
	a := h.send(command("c1", "n1", 1, "m-1", "m-2", "m-1"))
	if a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING || a.GetMonotonicSeq() != 1 {
		t.Fatalf("ack %v", a)
	}
	testutil.Eventually(t, "final report", func() bool { return len(h.cloud.reportsFor("c1")) == 1 })
	r := h.cloud.reportsFor("c1")[0]
	if !r.GetDone() || len(r.GetResults()) != 2 || r.GetResults()[0].GetMinerId() != "m-1" || r.GetResults()[1].GetMinerId() != "m-2" {
		t.Fatalf("report %v", r)
	}
	d := h.site.dispatches[0]
	if !slices.Equal(d.MinerIDs, []string{"m-1", "m-2"}) || d.IdempotencyKey != "idem-c1" || d.Spec.GetAction() != pb.Action_ACTION_REBOOT {
		t.Fatalf("dispatch %+v", d)
	}
	if h.site.marks[0] != 1 {
		t.Fatalf("mark on disk at dispatch was %d: it must be persisted before dispatch", h.site.marks[0])
	}
	if rec, err := st.Result(1); err != nil || !proto.Equal(rec, r) {
		t.Fatalf("recorded result %v, %v", rec, err)
	}
	audit := h.audit()
	if len(audit) != 1 || audit[0].GetCode() != pb.ResultCode_RESULT_CODE_RUNNING || audit[0].GetActor() != "user:alice" ||
		string(audit[0].GetSignature()) != "sig-c1" || audit[0].GetNodeId() != "n1" {
		t.Fatalf("audit %v", audit)
	}
	testutil.Eventually(t, "audit event", func() bool {
		h.cloud.mu.Lock()
		defer h.cloud.mu.Unlock()
		return len(h.cloud.events) == 1 && h.cloud.events[0].GetKind() == pb.EventKind_EVENT_KIND_COMMAND_AUDIT &&
			h.cloud.events[0].GetAudit().GetCommandId() == "c1"
	})
}

func TestRefusalsAreAuditedAndRunNothing(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, func(c *Config) {
		c.Verifier = VerifierFunc(func(cmd *pb.ControlCommand) error {
			switch string(cmd.GetSignature()) {
			case "sig-forged":
				return ErrBadSignature
			case "sig-oldkey":
				return fmt.Errorf("key k0 retired: %w", ErrUnknownKey)
			}
			return nil
		})
	})
	// An executed command sets the mark at 5.
	if a := h.send(command("c5", "n1", 5, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("c5: %v", a)
	}
	testutil.Eventually(t, "c5 done", func() bool { return len(h.cloud.reportsFor("c5")) == 1 })

	replay := command("c5-replay", "n1", 5, "m-1") // same seq, not the executed command
	forged := command("forged", "n1", 6, "m-1")
	forged.Signature = []byte("sig-forged")
	oldKey := command("oldkey", "n1", 6, "m-1")
	oldKey.Signature = []byte("sig-oldkey")
	cases := []struct {
		cmd  *pb.ControlCommand
		code pb.ResultCode
		mark uint64
	}{
		{command("other-node", "n2", 6, "m-1"), pb.ResultCode_RESULT_CODE_REFUSED_NODE, 5},
		{replay, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, 5},
		{command("old", "n1", 3, "m-1"), pb.ResultCode_RESULT_CODE_REFUSED_SEQ, 5},
		{forged, pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE, 5},
		{oldKey, pb.ResultCode_RESULT_CODE_REFUSED_KEY, 5},
		// Authentic and fresh, but for a miner this node does not own: refused, and the seq is consumed.
		{command("foreign", "n1", 7, "m-1", "m-99"), pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP, 7},
		{command("out-of-order", "n1", 6, "m-1"), pb.ResultCode_RESULT_CODE_REFUSED_SEQ, 7},
	}
	for i, tc := range cases {
		a := h.send(tc.cmd)
		if a.GetCode() != tc.code || a.GetMessage() == "" {
			t.Fatalf("%s: ack %v, want %s with a message", tc.cmd.GetCommandId(), a, tc.code)
		}
		if m := h.mark(); m != tc.mark {
			t.Fatalf("%s: mark %d, want %d", tc.cmd.GetCommandId(), m, tc.mark)
		}
		audit := h.audit()
		if len(audit) != i+2 {
			t.Fatalf("%s: %d audit records, want %d", tc.cmd.GetCommandId(), len(audit), i+2)
		}
		if last := audit[len(audit)-1]; last.GetCommandId() != tc.cmd.GetCommandId() || last.GetCode() != tc.code || last.GetMessage() == "" {
			t.Fatalf("%s: audit %v", tc.cmd.GetCommandId(), last)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if n := h.site.count(); n != 1 {
		t.Fatalf("%d dispatches; refused commands must run nothing", n)
	}
	// The ownership refusal is the recorded outcome of seq 7: a re-send gets DUPLICATE with it.
	r, err := st.Result(7)
	if err != nil || len(r.GetResults()) != 2 || r.GetResults()[1].GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP {
		t.Fatalf("recorded outcome of seq 7: %v, %v", r, err)
	}
}

func TestDuplicateReturnsTheRecordedResult(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, nil)
	c := command("c1", "n1", 1, "m-1", "m-2")
	h.send(c)
	testutil.Eventually(t, "done", func() bool { return len(h.cloud.reportsFor("c1")) == 1 })
	h.cloud.mu.Lock()
	h.cloud.acks = nil
	h.cloud.mu.Unlock()

	a := h.send(proto.Clone(c).(*pb.ControlCommand)) // the cloud re-sends after a reconnect
	if a.GetCode() != pb.ResultCode_RESULT_CODE_DUPLICATE {
		t.Fatalf("re-send ack %v", a)
	}
	testutil.Eventually(t, "recorded result re-sent", func() bool { return len(h.cloud.reportsFor("c1")) == 2 })
	reports := h.cloud.reportsFor("c1")
	if !proto.Equal(reports[0], reports[1]) {
		t.Fatalf("duplicate answered %v, executed %v", reports[1], reports[0])
	}
	if n := h.site.count(); n != 1 {
		t.Fatalf("executed %d times", n)
	}
	if audit := h.audit(); len(audit) != 2 || audit[1].GetCode() != pb.ResultCode_RESULT_CODE_DUPLICATE {
		t.Fatalf("audit %v", audit)
	}
}

func TestPartialReportsAndTimeout(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, nil)
	h.site.silent = map[string]bool{"m-3": true}
	h.send(command("c1", "n1", 1, "m-1", "m-2", "m-3"))
	testutil.Eventually(t, "report tick armed", func() bool { return h.clk.Pending() == 2 }) // report + timeout
	// The two answers reach the gate asynchronously: tick until partial reports carried both.
	partial := func() (n int) {
		for _, r := range h.cloud.reportsFor("c1") {
			if r.GetDone() {
				t.Fatalf("final report before the timeout: %v", r)
			}
			n += len(r.GetResults())
		}
		return n
	}
	testutil.Eventually(t, "partial reports", func() bool {
		h.clk.Advance(h.cfg.ReportInterval)
		time.Sleep(time.Millisecond)
		return partial() == 2
	})
	k := len(h.cloud.reportsFor("c1"))
	h.clk.Advance(h.cfg.CommandTimeout)
	testutil.Eventually(t, "final report", func() bool { return len(h.cloud.reportsFor("c1")) == k+1 })
	f := h.cloud.reportsFor("c1")[k]
	if !f.GetDone() || len(f.GetResults()) != 3 || f.GetResults()[2].GetCode() != pb.ResultCode_RESULT_CODE_TIMEOUT {
		t.Fatalf("final report %v", f)
	}
}

// failingStore fails CommitCommand on purpose.
type failingStore struct{ Store }

func (failingStore) CommitCommand(*pb.AuditRecord) error { return errors.New("disk full") }

func TestNothingRunsWhenTheMarkCannotBePersisted(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, failingStore{st}, closer, nil)
	a := h.send(command("c1", "n1", 1, "m-1"))
	if a.GetCode() != pb.ResultCode_RESULT_CODE_FAILED || a.GetMessage() == "" {
		t.Fatalf("ack %v", a)
	}
	time.Sleep(20 * time.Millisecond)
	if h.site.count() != 0 {
		t.Fatal("dispatched without a persisted mark")
	}
}

func TestSeqMarkAndResultsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, st, nil, nil)
	h.send(command("c3", "n1", 3, "m-1"))
	testutil.Eventually(t, "done", func() bool { return len(h.cloud.reportsFor("c3")) == 1 })
	h.stopGate()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := store.Open(store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h.st, h.site.st, h.closer = st2, st2, st2.Close
	h.startGate()
	h.cloud.mu.Lock()
	h.cloud.acks = nil
	h.cloud.mu.Unlock()
	if a := h.send(command("c3", "n1", 3, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_DUPLICATE {
		t.Fatalf("re-sent seq 3 after restart: %v", a)
	}
	testutil.Eventually(t, "recorded result", func() bool { return len(h.cloud.reportsFor("c3")) == 2 })
	if a := h.send(command("c2", "n1", 2, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_SEQ {
		t.Fatalf("seq 2 after restart: %v", a)
	}
	if a := h.send(command("c4", "n1", 4, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("seq 4 after restart: %v", a)
	}
	if h.site.count() != 2 {
		t.Fatalf("%d dispatches, want 2 (c3 once, c4)", h.site.count())
	}
}

func TestInterruptedCommandIsClosedOnResend(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, nil)
	h.site.silent = map[string]bool{"m-2": true}
	h.send(command("c1", "n1", 1, "m-1", "m-2"))
	testutil.Eventually(t, "dispatched", func() bool { return h.site.count() == 1 })
	h.stopGate() // the node stops with m-2 still running
	h.startGate()
	h.cloud.mu.Lock()
	h.cloud.acks = nil
	h.cloud.mu.Unlock()
	if a := h.send(command("c1", "n1", 1, "m-1", "m-2")); a.GetCode() != pb.ResultCode_RESULT_CODE_DUPLICATE {
		t.Fatalf("ack %v", a)
	}
	testutil.Eventually(t, "final report", func() bool { return len(h.cloud.reportsFor("c1")) == 1 })
	r := h.cloud.reportsFor("c1")[0]
	if !r.GetDone() || r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || r.GetResults()[1].GetCode() != pb.ResultCode_RESULT_CODE_FAILED {
		t.Fatalf("report %v", r)
	}
}

func TestHelloAckReplacesAndSavesOwnership(t *testing.T) {
	st, closer := memStore(t)
	h := newHarness(t, st, closer, nil)
	h.sys.Root.Send(h.gate, &pb.HelloAck{Devices: []*pb.Device{{MinerId: "m-99"}}})
	if a := h.send(command("c1", "n1", 1, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP {
		t.Fatalf("m-1 after the cloud took it away: %v", a)
	}
	if a := h.send(command("c2", "n1", 2, "m-99")); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("m-99 after the cloud gave it: %v", a)
	}
	if d, err := st.Ownership(); err != nil || len(d) != 1 || d[0].GetMinerId() != "m-99" {
		t.Fatalf("saved ownership %v, %v", d, err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); !errors.Is(err, ErrNoVerifier) {
		t.Fatalf("missing verifier: %v", err)
	}
	c.NodeID, c.Verifier = "n1", InProcessVerifier{}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
