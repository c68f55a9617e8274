package miner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"pgregory.net/rapid"
)

func TestNextTask(t *testing.T) {
	for _, c := range []struct {
		commands, polls, busy, maxCmd, maxPoll int
		want                                   take
	}{
		{0, 0, 0, 4, 2, takeNothing},
		{1, 0, 0, 4, 2, takeCommand},
		{1, 5, 0, 4, 2, takeCommand},   // a command before any poll
		{1, 5, 3, 4, 2, takeCommand},   // commands have slots above the polls' bound
		{1, 5, 4, 4, 2, takeNothing},   // every command slot taken; polls wait behind the command
		{0, 5, 1, 4, 2, takePoll},      // no command waits
		{0, 5, 2, 4, 2, takeNothing},   // the polls' bound
		{0, 5, 3, 4, 2, takeNothing},   // commands still hold slots above it
		{2, 0, 2, 2, 2, takeNothing},   // NewLimiter: one bound for both
		{0, 1, 1, 2, 2, takePoll},      // idem
		{3, 3, 0, 1, 1, takeCommand},   // one slot: the command first
		{0, 3, 0, 1, 1, takePoll},      // then the polls
		{1, 0, 10, 4, 16, takeNothing}, // odd bounds: a command waits until fewer than maxCmd are busy
	} {
		if got := nextTask(c.commands, c.polls, c.busy, c.maxCmd, c.maxPoll); got != c.want {
			t.Errorf("nextTask(commands %d, polls %d, busy %d, maxCmd %d, maxPoll %d) = %d, want %d",
				c.commands, c.polls, c.busy, c.maxCmd, c.maxPoll, got, c.want)
		}
	}
}

func TestLimiterRunsQueuedCommandsBeforeQueuedPolls(t *testing.T) {
	l := NewLimiter(1, nil)
	block := make(chan struct{})
	l.Go(context.Background(), func() { <-block }, nil)
	testutil.Eventually(t, "the slot taken", func() bool { return l.InFlight() == 1 })
	var mu sync.Mutex
	var order []string
	add := func(s string) func() {
		return func() { mu.Lock(); order = append(order, s); mu.Unlock() }
	}
	for i := range 3 {
		l.Go(context.Background(), add(fmt.Sprintf("p%d", i)), nil)
		l.GoCommand(context.Background(), add(fmt.Sprintf("c%d", i)), nil)
	}
	if q := l.Queued(); q != 6 {
		t.Fatalf("queued %d, want 6", q)
	}
	close(block)
	l.Wait()
	want := []string{"c0", "c1", "c2", "p0", "p1", "p2"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v (commands first, each class in submission order)", order, want)
	}
	testutil.VerifyNone(t)
}

func TestLimiterCommandSlotsAboveThePollBound(t *testing.T) {
	const maxPoll, maxCmd = 2, 5
	l := NewLimiterFor(maxPoll, maxCmd, nil)
	polls, cmds := make(chan struct{}), make(chan struct{})
	var pollsRan, cmdsRan atomic.Int32
	for range maxPoll {
		l.Go(context.Background(), func() { <-polls; pollsRan.Add(1) }, nil)
	}
	testutil.Eventually(t, "the poll slots taken", func() bool { return l.InFlight() == maxPoll })
	l.Go(context.Background(), func() { pollsRan.Add(1) }, nil) // waits: the polls' bound
	for range maxCmd {                                          // maxCmd-maxPoll start at once, the rest wait for slots
		l.GoCommand(context.Background(), func() { <-cmds; cmdsRan.Add(1) }, nil)
	}
	testutil.Eventually(t, "commands above the polls' bound", func() bool { return l.InFlight() == maxCmd })
	if q := l.Queued(); q != 1+maxPoll {
		t.Fatalf("queued %d, want %d (the poll and %d commands)", q, 1+maxPoll, maxPoll)
	}
	close(polls) // the two poll slots free: the waiting commands take them, not the waiting poll
	testutil.Eventually(t, "the waiting commands started", func() bool { return pollsRan.Load() == maxPoll && l.Queued() == 1 })
	time.Sleep(10 * time.Millisecond)
	if pollsRan.Load() != maxPoll || l.InFlight() != maxCmd {
		t.Fatalf("a poll ran while %d commands held the slots (in flight %d)", maxCmd, l.InFlight())
	}
	close(cmds)
	l.Wait()
	if pollsRan.Load() != maxPoll+1 || cmdsRan.Load() != maxCmd {
		t.Fatalf("ran %d polls, %d commands; want %d, %d", pollsRan.Load(), cmdsRan.Load(), maxPoll+1, maxCmd)
	}
	testutil.VerifyNone(t)
}

func TestLimiterStopAbandonsQueuedCommandsToo(t *testing.T) {
	l := NewLimiterFor(1, 1, nil)
	block := make(chan struct{})
	l.GoCommand(context.Background(), func() { <-block }, nil)
	testutil.Eventually(t, "the slot taken", func() bool { return l.InFlight() == 1 })
	var abandoned atomic.Int32
	for range 3 {
		l.GoCommand(context.Background(), func() { t.Error("a queued command ran after Stop") }, func() { abandoned.Add(1) })
		l.Go(context.Background(), func() { t.Error("a queued poll ran after Stop") }, func() { abandoned.Add(1) })
	}
	stopped := make(chan struct{})
	go func() { l.Stop(); close(stopped) }()
	testutil.Eventually(t, "queued ops abandoned", func() bool { return abandoned.Load() == 6 })
	close(block)
	<-stopped
	l.GoCommand(context.Background(), func() { t.Error("a command ran after Stop") }, func() { abandoned.Add(1) })
	if abandoned.Load() != 7 {
		t.Fatal("GoCommand after Stop did not abandon at once")
	}
	testutil.VerifyNone(t)
}

// TestLimiterBoundsProperty submits random mixes of polls and commands from several goroutines, some holding
// their slot a little, and checks the bounds and that each op runs exactly once.
func TestLimiterBoundsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		maxPoll := rapid.IntRange(1, 6).Draw(rt, "maxPoll")
		maxCmd := rapid.IntRange(maxPoll, 12).Draw(rt, "maxCmd")
		kinds := rapid.SliceOfN(rapid.Bool(), 1, 120).Draw(rt, "isCommand")
		holds := rapid.SliceOfN(rapid.IntRange(0, 300), len(kinds), len(kinds)).Draw(rt, "holdMicros")
		l := NewLimiterFor(maxPoll, maxCmd, nil)
		var running, pollsRunning, peak, pollPeak atomic.Int32
		ran := make([]atomic.Int32, len(kinds))
		var wg sync.WaitGroup
		for part := range 3 {
			wg.Go(func() {
				for i := part; i < len(kinds); i += 3 {
					cmd := kinds[i]
					op := func() {
						r := running.Add(1)
						for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
						}
						if !cmd {
							pr := pollsRunning.Add(1)
							for p := pollPeak.Load(); pr > p && !pollPeak.CompareAndSwap(p, pr); p = pollPeak.Load() {
							}
						}
						time.Sleep(time.Duration(holds[i]) * time.Microsecond)
						ran[i].Add(1)
						if !cmd {
							pollsRunning.Add(-1)
						}
						running.Add(-1)
					}
					if cmd {
						l.GoCommand(context.Background(), op, nil)
					} else {
						l.Go(context.Background(), op, nil)
					}
				}
			})
		}
		wg.Wait()
		l.Wait()
		if p := peak.Load(); int(p) > maxCmd {
			rt.Fatalf("%d ops at once, bound %d", p, maxCmd)
		}
		if p := pollPeak.Load(); int(p) > maxPoll {
			rt.Fatalf("%d polls at once, bound %d", p, maxPoll)
		}
		for i := range ran {
			if n := ran[i].Load(); n != 1 {
				rt.Fatalf("op %d ran %d times", i, n)
			}
		}
		if l.InFlight() != 0 || l.Queued() != 0 {
			rt.Fatalf("after Wait: in flight %d, queued %d", l.InFlight(), l.Queued())
		}
	})
	testutil.VerifyNone(t)
}
