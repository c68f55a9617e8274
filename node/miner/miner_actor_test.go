package miner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

func testConfig() Config {
	c := DefaultConfig()
	c.PollInterval = 5 * time.Second
	c.PollJitter = 500 * time.Millisecond
	c.PollTimeout = time.Second
	c.CommandTimeout = 2 * time.Second
	return c
}

func TestManyMinersPollOnTheirTimers(t *testing.T) {
	h := newHarness(t, 200, testConfig())
	ids := h.ids()
	h.pollRounds(5, ids...)
	for _, id := range ids {
		if n := h.rec.sampleCount(id); n < 5 {
			t.Fatalf("%s: %d samples after 5 rounds", id, n)
		}
		s := h.rec.lastSample(id)
		if s.GetState() != mining || s.GetPollError() != "" || s.GetMinerId() != id || s.GetObservedAtUnixMs() == 0 {
			t.Fatalf("%s: last sample %v", id, s)
		}
		if h.rec.state(id) != mining {
			t.Fatalf("%s: status state %s", id, h.rec.state(id))
		}
	}
	// Without the clock moving nobody polls: no goroutine sleeps per miner.
	before := h.fleet.Get("m-7").Polls()
	time.Sleep(50 * time.Millisecond)
	if after := h.fleet.Get("m-7").Polls(); after != before {
		t.Fatalf("polled %d times with the clock stopped", after-before)
	}
	if got := h.metric("hashfleet_node_polls_total", map[string]string{"result": "ok"}); got < 1000 {
		t.Fatalf("polls_total{ok} = %v, want ≥ 1000", got)
	}
	if got := h.metric("hashfleet_node_poll_latency_seconds", map[string]string{"driver": "cgminer"}); got < 1000 {
		t.Fatalf("poll latency observations = %v", got)
	}
}

func TestFirstPollsAreSpreadOverTheInterval(t *testing.T) {
	h := newHarness(t, 100, testConfig())
	h.clk.Advance(h.cfg.PollInterval / 2)
	count := func() (n int) {
		for _, id := range h.ids() {
			if h.rec.sampleCount(id) > 0 {
				n++
			}
		}
		return n
	}
	polled := -1
	testutil.Eventually(t, "the ticks that fell due are all polled", func() bool {
		before := count()
		time.Sleep(50 * time.Millisecond)
		polled = count()
		return polled == before && h.limiter.InFlight() == 0
	})
	if polled < 25 || polled > 75 {
		t.Fatalf("%d of 100 miners polled in the first half interval, want about half", polled)
	}
}

func TestPanickingDriverRestartsOnlyItsActor(t *testing.T) {
	h := newHarness(t, 10, testConfig())
	ids := h.ids()
	h.pollRounds(1, ids...)
	bad := h.fleet.Get("m-3")
	bad.PanicTimes(2) // its next two polls panic, then it answers again
	others := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == "m-3" })
	polls := map[string]int64{}
	for _, id := range others {
		polls[id] = h.fleet.Get(id).Polls()
	}

	// 20s of business time in small steps: m-3 panics, is restarted after its backoff (on the clock),
	// panics again, is restarted again, then polls normally; everybody else polls on as if nothing happened.
	h.advance(20*time.Second, 250*time.Millisecond)

	if got := h.incarnations("m-3"); got != 3 {
		t.Fatalf("m-3 started %d times, want 3 (two restarts)", got)
	}
	for _, id := range others {
		if got := h.fleet.Get(id).Polls() - polls[id]; got < 3 {
			t.Fatalf("%s polled %d times during m-3's restarts, want ≥ 3", id, got)
		}
		if h.incarnations(id) != 1 {
			t.Fatalf("%s restarted %d times; only m-3 should", id, h.incarnations(id)-1)
		}
		if s := h.rec.lastSample(id); s.GetState() != mining || s.GetPollError() != "" {
			t.Fatalf("%s: %v", id, s)
		}
	}
	if got := h.metric("hashfleet_actors_restarts_total", map[string]string{"kind": "miner", "outcome": "restarted"}); got != 2 {
		t.Fatalf("restart metric %v, want 2", got)
	}
	if got := h.metric("hashfleet_node_polls_total", map[string]string{"result": "panic"}); got != 2 {
		t.Fatalf("panic polls metric %v, want 2", got)
	}
	h.pollRounds(1, "m-3")
	if s := h.rec.lastSample("m-3"); s.GetPollError() != "" || s.GetState() != mining {
		t.Fatalf("m-3 after recovery: %v", s)
	}
	if st := h.status("m-3"); st.Polls == 0 {
		t.Fatalf("m-3 status %+v", st)
	}
}

func TestMinerDownUnreachableThenBackMining(t *testing.T) {
	h := newHarness(t, 3, testConfig())
	h.pollRounds(1, h.ids()...)
	d := h.fleet.Get("m-0")
	d.SetFault(drivertest.FaultDown)

	h.pollRounds(1, h.ids()...)
	if st := h.status("m-0"); st.State != mining || st.ConsecutiveFailures != 1 {
		t.Fatalf("after one failure: %s, %d failures (one lost reply must not flap the state)", st.State, st.ConsecutiveFailures)
	}
	h.pollRounds(1, h.ids()...)
	st := h.status("m-0")
	if st.State != unreachable || !strings.Contains(st.LastError, "unreachable") || st.Sample.GetPollError() == "" {
		t.Fatalf("after two failures: %+v", st)
	}
	if st.LastGood.GetHashrate_5SThs() != 100 {
		t.Fatalf("last good sample lost: %v", st.LastGood)
	}

	d.SetFault(drivertest.FaultNone)
	h.pollRounds(1, h.ids()...)
	if st := h.status("m-0"); st.State != mining || st.LastError != "" {
		t.Fatalf("after recovery: %s %q", st.State, st.LastError)
	}
	want := []string{"MINER_STATE_UNSPECIFIED>MINER_STATE_MINING", "MINER_STATE_MINING>MINER_STATE_UNREACHABLE", "MINER_STATE_UNREACHABLE>MINER_STATE_MINING"}
	testutil.Eventually(t, "state change events", func() bool { return slices.Equal(h.rec.stateChanges("m-0"), want) })
	for _, id := range []string{"m-1", "m-2"} {
		if got := h.rec.stateChanges(id); len(got) != 1 {
			t.Fatalf("%s had state changes %v", id, got)
		}
	}
}

func TestMalformedRepliesGiveAClearErrorAndOthersKeepPolling(t *testing.T) {
	h := newHarness(t, 5, testConfig())
	h.pollRounds(1, h.ids()...)
	h.fleet.Get("m-1").SetFault(drivertest.FaultMalformed)
	h.pollRounds(3, h.ids()...)

	s := h.rec.lastSample("m-1")
	if !strings.HasPrefix(s.GetPollError(), "malformed: ") || !strings.Contains(s.GetPollError(), "invalid character") {
		t.Fatalf("poll error %q does not say what was wrong", s.GetPollError())
	}
	if s.GetState() != unreachable {
		t.Fatalf("malformed replies count as failures: state %s", s.GetState())
	}
	if got := h.metric("hashfleet_node_polls_total", map[string]string{"result": "malformed"}); got != 3 {
		t.Fatalf("malformed polls %v, want 3", got)
	}
	// One POLL_ERROR event for the new trouble, not one per poll.
	h.rec.mu.Lock()
	pollErrors := 0
	for _, e := range h.rec.events {
		if e.GetKind() == pb.EventKind_EVENT_KIND_POLL_ERROR && e.GetMinerId() == "m-1" {
			pollErrors++
		}
	}
	h.rec.mu.Unlock()
	if pollErrors != 1 {
		t.Fatalf("%d POLL_ERROR events for one kind of error", pollErrors)
	}
	for _, id := range []string{"m-0", "m-2", "m-3", "m-4"} {
		if s := h.rec.lastSample(id); s.GetState() != mining || s.GetPollError() != "" || h.rec.sampleCount(id) < 4 {
			t.Fatalf("%s: %d samples, last %v", id, h.rec.sampleCount(id), s)
		}
	}
}

func TestCommandsRunOneAtATimeInArrivalOrder(t *testing.T) {
	h := newHarness(t, 2, testConfig())
	h.pollRounds(1, h.ids()...)
	d := h.fleet.Get("m-0")
	release := d.Block()
	actions := []pb.Action{pb.Action_ACTION_BLINK, pb.Action_ACTION_STOP_MINING, pb.Action_ACTION_BLINK, pb.Action_ACTION_START_MINING, pb.Action_ACTION_BLINK}
	for i, a := range actions {
		h.execute("m-0", fmt.Sprintf("c%d", i), "", a)
	}
	testutil.Eventually(t, "commands queued", func() bool { return h.status("m-0").QueuedCommands == 4 })
	release()
	testutil.Eventually(t, "all results", func() bool {
		for i := range actions {
			if len(h.rec.resultsFor(fmt.Sprintf("c%d", i))) != 1 {
				return false
			}
		}
		return true
	})
	calls := d.Calls()
	if len(calls) != len(actions) {
		t.Fatalf("%d executions, want %d", len(calls), len(actions))
	}
	for i, c := range calls {
		if c.Key != fmt.Sprintf("c%d", i) || c.Action != actions[i] {
			t.Fatalf("call %d was %v, want c%d %s", i, c, i, actions[i])
		}
	}
	for i := range actions {
		if r := h.rec.resultsFor(fmt.Sprintf("c%d", i))[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || r.GetMinerId() != "m-0" {
			t.Fatalf("c%d: %v", i, r)
		}
	}
	if d.Violations() != 0 {
		t.Fatal("two driver calls overlapped")
	}
	if st := h.status("m-0"); st.State != online {
		t.Fatalf("after stop then start: %s, want ONLINE until a poll shows hashing", st.State)
	}
}

func TestQueuedCommandWaitsForAtMostOnePoll(t *testing.T) {
	h := newHarness(t, 1, testConfig())
	h.pollRounds(1, "m-0")
	d := h.fleet.Get("m-0")
	releasePoll := d.Block()
	h.clk.Advance(h.cfg.PollInterval + h.cfg.PollJitter) // a poll starts and blocks in the driver
	testutil.Eventually(t, "poll in flight", func() bool { return h.limiter.InFlight() == 1 })
	for _, c := range []string{"c1", "c2", "c3"} {
		h.execute("m-0", c, "", pb.Action_ACTION_BLINK)
	}
	testutil.Eventually(t, "commands queued", func() bool { return h.status("m-0").QueuedCommands == 3 })

	releaseC1 := d.Block() // c1 will block in turn
	releasePoll()
	testutil.Eventually(t, "c1 running", func() bool { return h.status("m-0").QueuedCommands == 2 })
	testutil.Eventually(t, "next poll armed", func() bool { return h.clk.Pending() == 1 })
	h.clk.Advance(h.cfg.PollInterval + h.cfg.PollJitter) // a poll falls due while c1 runs and c2, c3 wait
	time.Sleep(20 * time.Millisecond)
	releaseC1()
	testutil.Eventually(t, "results", func() bool { return len(h.rec.resultsFor("c3")) == 1 })
	h.settle()

	want := []string{"poll", "exec:ACTION_BLINK:c1", "poll", "exec:ACTION_BLINK:c2", "exec:ACTION_BLINK:c3"}
	ops := d.Ops()
	i := slices.Index(ops, "exec:ACTION_BLINK:c1")
	if i < 1 || !slices.Equal(ops[i-1:i+4], want) {
		t.Fatalf("ops %v: want ...%v (c1 right after the poll in flight; the due poll and the queue alternate)", ops, want)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, 1, testConfig())
	h.pollRounds(1, "m-0")
	d := h.fleet.Get("m-0")
	release := d.Block()
	h.execute("m-0", "c1", "key-1", pb.Action_ACTION_BLINK)
	h.execute("m-0", "c1-resent", "key-1", pb.Action_ACTION_BLINK) // same key while the first runs
	h.execute("m-0", "c2", "key-2", pb.Action_ACTION_BLINK)
	release()
	testutil.Eventually(t, "results", func() bool {
		return len(h.rec.resultsFor("c1")) == 1 && len(h.rec.resultsFor("c1-resent")) == 1 && len(h.rec.resultsFor("c2")) == 1
	})
	h.execute("m-0", "c1-again", "key-1", pb.Action_ACTION_BLINK) // same key after it finished
	testutil.Eventually(t, "recorded result", func() bool { return len(h.rec.resultsFor("c1-again")) == 1 })

	if got := len(d.Calls()); got != 2 {
		t.Fatalf("%d executions for 2 distinct keys", got)
	}
	first := h.rec.resultsFor("c1")[0].Result
	for _, c := range []string{"c1-resent", "c1-again"} {
		if r := h.rec.resultsFor(c)[0].Result; r.GetCode() != first.GetCode() || r.GetFinishedAtUnixMs() != first.GetFinishedAtUnixMs() {
			t.Fatalf("%s got %v, want the recorded %v", c, r, first)
		}
	}
}

func TestRebootThenBackMining(t *testing.T) {
	h := newHarness(t, 1, testConfig())
	h.pollRounds(1, "m-0")
	d := h.fleet.Get("m-0")
	d.SetUptime(10_000)
	h.pollRounds(1, "m-0")
	d.SetRebootDownPolls(3)
	h.execute("m-0", "r1", "", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "reboot result", func() bool { return len(h.rec.resultsFor("r1")) == 1 })
	if st := h.status("m-0"); st.State != rebooting {
		t.Fatalf("after reboot command: %s", st.State)
	}
	h.pollRounds(3, "m-0") // down while rebooting: stays REBOOTING, not UNREACHABLE
	if st := h.status("m-0"); st.State != rebooting || st.ConsecutiveFailures != 3 {
		t.Fatalf("while down after reboot: %s (%d failures)", st.State, st.ConsecutiveFailures)
	}
	h.pollRounds(1, "m-0") // answers with a fresh uptime
	if st := h.status("m-0"); st.State != mining {
		t.Fatalf("back after reboot: %s", st.State)
	}
	want := []string{"MINER_STATE_UNSPECIFIED>MINER_STATE_MINING", "MINER_STATE_MINING>MINER_STATE_REBOOTING", "MINER_STATE_REBOOTING>MINER_STATE_MINING"}
	testutil.Eventually(t, "events", func() bool { return slices.Equal(h.rec.stateChanges("m-0"), want) })
}

func TestRebootTimeoutMakesUnreachable(t *testing.T) {
	cfg := testConfig()
	cfg.RebootTimeout = time.Minute
	h := newHarness(t, 1, cfg)
	h.pollRounds(1, "m-0")
	d := h.fleet.Get("m-0")
	d.SetRebootDownPolls(1000)
	h.execute("m-0", "r1", "", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "reboot result", func() bool { return len(h.rec.resultsFor("r1")) == 1 })
	h.pollRounds(10, "m-0") // ~55s
	if st := h.status("m-0"); st.State != rebooting {
		t.Fatalf("before the reboot timeout: %s", st.State)
	}
	h.pollRounds(2, "m-0")
	if st := h.status("m-0"); st.State != unreachable {
		t.Fatalf("after the reboot timeout: %s", st.State)
	}
}

func TestCommandFailuresMapToCodes(t *testing.T) {
	h := newHarness(t, 1, testConfig())
	d := h.fleet.Get("m-0")
	h.execute("m-0", "u", "", pb.Action_ACTION_SET_POWER_TARGET) // the fake does not support it
	testutil.Eventually(t, "unsupported", func() bool { return len(h.rec.resultsFor("u")) == 1 })
	if r := h.rec.resultsFor("u")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_UNSUPPORTED || !strings.Contains(r.GetMessage(), "unsupported") {
		t.Fatalf("unsupported: %v", r)
	}
	release := d.Block()
	defer release()
	h.execute("m-0", "slow", "", pb.Action_ACTION_BLINK) // blocks past CommandTimeout (real time: it is I/O)
	testutil.WaitFor(t, 10*time.Second, "timeout", func() bool { return len(h.rec.resultsFor("slow")) == 1 })
	if r := h.rec.resultsFor("slow")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_TIMEOUT {
		t.Fatalf("slow: %v", r)
	}
}

func TestStoppingAnswersQueuedCommands(t *testing.T) {
	h := newHarness(t, 1, testConfig())
	d := h.fleet.Get("m-0")
	release := d.Block()
	defer release()
	h.execute("m-0", "c1", "", pb.Action_ACTION_BLINK)
	h.execute("m-0", "c2", "", pb.Action_ACTION_BLINK)
	testutil.Eventually(t, "c2 queued", func() bool { return h.status("m-0").QueuedCommands == 1 })
	if err := h.sys.Root.StopFuture(h.pids["m-0"]).Wait(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "answers", func() bool { return len(h.rec.resultsFor("c1")) == 1 && len(h.rec.resultsFor("c2")) == 1 })
	for _, c := range []string{"c1", "c2"} {
		if r := h.rec.resultsFor(c)[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_FAILED || !strings.Contains(r.GetMessage(), "stopped") {
			t.Fatalf("%s: %v", c, r)
		}
	}
	testutil.Eventually(t, "driver closed", func() bool { return d.Closed() == 1 })
}

func TestNoDriverIsAPollFailureNotACrash(t *testing.T) {
	devs := []*pb.Device{{MinerId: "p-0", Protocol: pb.Protocol_PROTOCOL_PROTO}}
	h := startHarness(t, testConfig(), devs, func(d *pb.Device) (miners.Driver, error) {
		return nil, fmt.Errorf("protocol %s: %w", d.GetProtocol(), miners.ErrUnsupported)
	}, clock.NewFake(time.Unix(0, 0)))
	h.pollRounds(2, "p-0")
	st := h.status("p-0")
	if st.State != unreachable || !strings.HasPrefix(st.Sample.GetPollError(), "no_driver: ") || !strings.Contains(st.LastError, "PROTOCOL_PROTO") {
		t.Fatalf("status %+v", st)
	}
	h.execute("p-0", "c1", "", pb.Action_ACTION_BLINK)
	testutil.Eventually(t, "answer", func() bool { return len(h.rec.resultsFor("c1")) == 1 })
	if r := h.rec.resultsFor("c1")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_UNSUPPORTED {
		t.Fatalf("command without a driver: %v", r)
	}
	if h.incarnations("p-0") < 3 {
		t.Fatal("the factory is retried on every poll")
	}
}

func TestCommandWithdrawsAPollWaitingForASlot(t *testing.T) {
	fleet, devs := drivertest.NewFleet(2)
	h := startHarness(t, testConfig(), devs, fleet.Factory, clock.NewFake(time.Unix(1_700_000_000, 0)),
		func(h *harness) { h.limiter = NewLimiter(1, nil) }) // one slot for the site
	h.fleet = fleet
	h.pollRounds(1, "m-0", "m-1")
	h.settle()
	d0, d1 := fleet.Get("m-0"), fleet.Get("m-1")
	polls0, polls1 := d0.Polls(), d1.Polls()
	block := make(chan struct{}) // another operation of the site holds the only slot
	unblock := sync.OnceFunc(func() { close(block) })
	t.Cleanup(unblock)
	h.limiter.Go(context.Background(), func() { <-block }, nil)
	testutil.Eventually(t, "the slot taken", func() bool { return h.limiter.InFlight() == 1 })
	h.clk.Advance(h.cfg.PollInterval + h.cfg.PollJitter)
	testutil.Eventually(t, "both polls wait for the slot", func() bool { return h.limiter.Queued() == 2 })

	h.execute("m-0", "c1", "", pb.Action_ACTION_BLINK)
	testutil.Eventually(t, "the command queued in the limiter", func() bool { return h.limiter.Queued() == 3 })
	unblock()
	testutil.Eventually(t, "the command's result", func() bool { return len(h.rec.resultsFor("c1")) == 1 })
	testutil.Eventually(t, "both polled", func() bool { return d0.Polls() == polls0+1 && d1.Polls() == polls1+1 })
	h.settle()
	ops := d0.Ops()
	if n := len(ops); n < 2 || ops[n-2] != "exec:ACTION_BLINK:c1" || ops[n-1] != "poll" {
		t.Fatalf("m-0 ops %v: want the command ahead of the withdrawn poll, then the poll", ops)
	}
	if r := h.rec.resultsFor("c1")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("c1: %v", r)
	}
	if d0.Violations() != 0 || d0.Closed() != 0 {
		t.Fatalf("driver overlapped (%d) or closed (%d) by the withdrawn poll", d0.Violations(), d0.Closed())
	}
}
