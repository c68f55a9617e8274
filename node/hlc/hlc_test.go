package hlc

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wallClock is a clock.Clock whose Now can be set anywhere, backwards included (clock.Fake never goes back).
type wallClock struct {
	clock.Clock
	mu  sync.Mutex
	now time.Time
}

func (w *wallClock) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *wallClock) set(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = t
}

func newClock(t interface{ Fatal(...any) }, node string, wall clock.Clock, maxOffset time.Duration) *Clock {
	c, err := New(Config{NodeID: node, MaxOffset: maxOffset}, wall)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestTickTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		last Timestamp
		wall int64
		want Timestamp
	}{
		{"wall ahead resets logical", Timestamp{100, 7}, 150, Timestamp{150, 0}},
		{"same ms bumps logical", Timestamp{100, 7}, 100, Timestamp{100, 8}},
		{"wall stepped back bumps logical", Timestamp{100, 7}, 40, Timestamp{100, 8}},
		{"logical exhausted borrows a ms", Timestamp{100, math.MaxUint32}, 100, Timestamp{101, 0}},
		{"zero last", Timestamp{}, 5, Timestamp{5, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Tick(tc.last, tc.wall); got != tc.want {
				t.Fatalf("Tick(%v, %d) = %v, want %v", tc.last, tc.wall, got, tc.want)
			}
		})
	}
}

func TestMergeTable(t *testing.T) {
	for _, tc := range []struct {
		name         string
		last, remote Timestamp
		wall         int64
		want         Timestamp
	}{
		{"wall ahead of both", Timestamp{100, 3}, Timestamp{120, 9}, 200, Timestamp{200, 0}},
		{"remote ahead", Timestamp{100, 3}, Timestamp{120, 9}, 110, Timestamp{120, 10}},
		{"local ahead", Timestamp{130, 3}, Timestamp{120, 9}, 110, Timestamp{130, 4}},
		{"same ms, remote logical larger", Timestamp{120, 3}, Timestamp{120, 9}, 120, Timestamp{120, 10}},
		{"same ms, local logical larger", Timestamp{120, 11}, Timestamp{120, 9}, 100, Timestamp{120, 12}},
		{"remote exhausted logical", Timestamp{1, 0}, Timestamp{120, math.MaxUint32}, 120, Timestamp{121, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge(tc.last, tc.remote, tc.wall); got != tc.want {
				t.Fatalf("Merge(%v, %v, %d) = %v, want %v", tc.last, tc.remote, tc.wall, got, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	a := &pb.HLC{WallMs: 10, Logical: 1, NodeId: "a"}
	for _, tc := range []struct {
		x, y *pb.HLC
		want int
	}{
		{a, a, 0},
		{nil, nil, 0},
		{nil, &pb.HLC{}, -1},
		{&pb.HLC{}, nil, 1},
		{a, &pb.HLC{WallMs: 11, NodeId: "a"}, -1},
		{a, &pb.HLC{WallMs: 10, Logical: 2, NodeId: "a"}, -1},
		{a, &pb.HLC{WallMs: 10, Logical: 1, NodeId: "b"}, -1},
		{&pb.HLC{WallMs: 10, Logical: 1, NodeId: "b"}, a, 1},
		{&pb.HLC{WallMs: 9, Logical: 99, NodeId: "z"}, a, -1},
	} {
		if got := Compare(tc.x, tc.y); got != tc.want {
			t.Errorf("Compare(%v, %v) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
}

func TestClockMonotonicWhenWallStepsBack(t *testing.T) {
	w := &wallClock{now: t0}
	c := newClock(t, "n1", w, 0)
	first := c.Now()
	if first.GetWallMs() != t0.UnixMilli() || first.GetLogical() != 0 || first.GetNodeId() != "n1" {
		t.Fatalf("first = %v", first)
	}
	w.set(t0.Add(-time.Hour)) // NTP step back
	prev := first
	for range 5 {
		ts := c.Now()
		if Compare(ts, prev) <= 0 {
			t.Fatalf("%v not after %v with the wall clock stepped back", ts, prev)
		}
		if ts.GetWallMs() != t0.UnixMilli() {
			t.Fatalf("wall_ms %d moved although the wall clock is behind", ts.GetWallMs())
		}
		prev = ts
	}
	w.set(t0.Add(time.Second))
	if ts := c.Now(); ts.GetWallMs() != t0.Add(time.Second).UnixMilli() || ts.GetLogical() != 0 {
		t.Fatalf("after the wall clock caught up: %v", ts)
	}
}

func TestClockOnFake(t *testing.T) {
	f := clock.NewFake(t0)
	c := newClock(t, "n1", f, time.Minute)
	a := c.Now()
	b := c.Now()
	f.Advance(time.Millisecond)
	d := c.Now()
	if !(Compare(a, b) < 0 && Compare(b, d) < 0) || b.GetLogical() != 1 || d.GetLogical() != 0 {
		t.Fatalf("a=%v b=%v d=%v", a, b, d)
	}
}

func TestUpdate(t *testing.T) {
	w := &wallClock{now: t0}
	c := newClock(t, "node", w, time.Minute)
	remote := &pb.HLC{WallMs: t0.Add(30 * time.Second).UnixMilli(), Logical: 4, NodeId: "cloud"}
	got, err := c.Update(remote)
	if err != nil {
		t.Fatal(err)
	}
	if Compare(got, remote) <= 0 || got.GetWallMs() != remote.GetWallMs() || got.GetLogical() != 5 || got.GetNodeId() != "node" {
		t.Fatalf("Update = %v", got)
	}
	if n := c.Now(); Compare(n, got) <= 0 {
		t.Fatalf("Now %v after Update %v", n, got)
	}

	before := c.Last()
	far := &pb.HLC{WallMs: t0.Add(2 * time.Minute).UnixMilli(), NodeId: "cloud"}
	if ts, err := c.Update(far); !errors.Is(err, ErrRemoteAhead) || ts != nil {
		t.Fatalf("Update(far) = %v, %v; want ErrRemoteAhead", ts, err)
	}
	if Compare(c.Last(), before) != 0 {
		t.Fatalf("a refused remote moved the clock: %v -> %v", before, c.Last())
	}
	if ts, err := c.Update(nil); err != nil || Compare(ts, before) <= 0 {
		t.Fatalf("Update(nil) = %v, %v", ts, err)
	}
}

func TestRestore(t *testing.T) {
	w := &wallClock{now: t0}
	c := newClock(t, "n1", w, 0)
	persisted := &pb.HLC{WallMs: t0.Add(time.Hour).UnixMilli(), Logical: 9, NodeId: "n1"}
	c.Restore(persisted)
	if ts := c.Now(); Compare(ts, persisted) <= 0 {
		t.Fatalf("after Restore, Now %v is not after %v", ts, persisted)
	}
	last := c.Last()
	c.Restore(&pb.HLC{WallMs: 1})
	if Compare(c.Last(), last) != 0 {
		t.Fatal("Restore to an older timestamp moved the clock")
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("empty node id: %v", err)
	}
	if _, err := New(Config{NodeID: "n", MaxOffset: -1}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative offset: %v", err)
	}
	if err := DefaultConfig("n").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentNowIsUnique(t *testing.T) {
	c := newClock(t, "n1", clock.NewFake(t0), 0)
	const workers, each = 8, 500
	out := make(chan Timestamp, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				out <- FromPB(c.Now())
			}
		})
	}
	wg.Wait()
	close(out)
	seen := map[Timestamp]bool{}
	for ts := range out {
		if seen[ts] {
			t.Fatalf("timestamp %v issued twice", ts)
		}
		seen[ts] = true
	}
}

func TestFormat(t *testing.T) {
	got := Format(&pb.HLC{WallMs: t0.UnixMilli(), Logical: 3, NodeId: "n1"})
	if got != "2025-03-01T12:00:00.000Z+3@n1" {
		t.Fatalf("Format = %q", got)
	}
	if Format(nil) != "-" {
		t.Fatal("Format(nil)")
	}
}

// Property tests.

func genTS() *rapid.Generator[Timestamp] {
	return rapid.Custom(func(t *rapid.T) Timestamp {
		return Timestamp{
			WallMs:  rapid.Int64Range(0, 1<<42).Draw(t, "wall"),
			Logical: rapid.OneOf(rapid.Uint32Range(0, 5), rapid.Just(uint32(math.MaxUint32))).Draw(t, "logical"),
		}
	})
}

func TestPropTickMergeStrictlyAfter(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		last, remote := genTS().Draw(t, "last"), genTS().Draw(t, "remote")
		wall := rapid.Int64Range(0, 1<<42).Draw(t, "wallnow")
		tk := Tick(last, wall)
		if tk.Compare(last) <= 0 {
			t.Fatalf("Tick %v not after last %v", tk, last)
		}
		if tk.WallMs < wall {
			t.Fatalf("Tick %v behind the wall clock %d", tk, wall)
		}
		m := Merge(last, remote, wall)
		if m.Compare(last) <= 0 || m.Compare(remote) <= 0 {
			t.Fatalf("Merge %v not after last %v and remote %v", m, last, remote)
		}
		if m.WallMs < wall {
			t.Fatalf("Merge %v behind the wall clock %d", m, wall)
		}
		// It never jumps further than needed: at most one ms past the largest input.
		if hi := max(last.WallMs, remote.WallMs, wall); m.WallMs > hi+1 || tk.WallMs > max(last.WallMs, wall)+1 {
			t.Fatalf("jumped ahead: tick %v merge %v, inputs %v %v %d", tk, m, last, remote, wall)
		}
	})
}

func TestPropCompareTotalOrder(t *testing.T) {
	gen := rapid.Custom(func(t *rapid.T) *pb.HLC {
		if rapid.IntRange(0, 9).Draw(t, "nil") == 0 {
			return nil
		}
		return &pb.HLC{
			WallMs:  rapid.Int64Range(0, 3).Draw(t, "w"),
			Logical: rapid.Uint32Range(0, 2).Draw(t, "l"),
			NodeId:  rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "n"),
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := gen.Draw(t, "a"), gen.Draw(t, "b"), gen.Draw(t, "c")
		if Compare(a, b) != -Compare(b, a) {
			t.Fatalf("not antisymmetric: %v %v", a, b)
		}
		if Compare(a, b) <= 0 && Compare(b, c) <= 0 && Compare(a, c) > 0 {
			t.Fatalf("not transitive: %v %v %v", a, b, c)
		}
		if a != nil && b != nil && FromPB(a) != FromPB(b) && Compare(a, b) != FromPB(a).Compare(FromPB(b)) {
			t.Fatalf("node id overrides time: %v %v", a, b)
		}
	})
}

// TestPropCausality runs three nodes with wall clocks that jump back and forth, sending and receiving
// messages at random, and checks the HLC guarantee: if event e happened before event f (same node earlier,
// or a send before its receipt, transitively), then hlc(e) < hlc(f). Happened-before is tracked exactly with
// vector clocks.
func TestPropCausality(t *testing.T) {
	const nodes = 3
	type event struct {
		ts  *pb.HLC
		vec [nodes]int
	}
	type msg struct {
		ts  *pb.HLC
		vec [nodes]int
	}
	rapid.Check(t, func(t *rapid.T) {
		walls := make([]*wallClock, nodes)
		clocks := make([]*Clock, nodes)
		vecs := make([][nodes]int, nodes)
		for i := range nodes {
			walls[i] = &wallClock{now: t0.Add(time.Duration(rapid.IntRange(-5000, 5000).Draw(t, "skew")) * time.Millisecond)}
			clocks[i] = newClock(t, string(rune('a'+i)), walls[i], 0)
		}
		var events []event
		var inflight []msg
		record := func(i int, ts *pb.HLC) {
			vecs[i][i]++
			events = append(events, event{ts: ts, vec: vecs[i]})
		}
		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for range steps {
			i := rapid.IntRange(0, nodes-1).Draw(t, "node")
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0: // wall clock moves, possibly backwards
				d := time.Duration(rapid.IntRange(-3000, 3000).Draw(t, "dwall")) * time.Millisecond
				walls[i].set(walls[i].Now().Add(d))
			case 1: // local event
				record(i, clocks[i].Now())
			case 2: // send
				ts := clocks[i].Now()
				record(i, ts)
				inflight = append(inflight, msg{ts: ts, vec: vecs[i]})
			case 3: // receive one in-flight message
				if len(inflight) == 0 {
					continue
				}
				k := rapid.IntRange(0, len(inflight)-1).Draw(t, "msg")
				m := inflight[k]
				inflight = append(inflight[:k], inflight[k+1:]...)
				ts, err := clocks[i].Update(m.ts)
				if err != nil {
					t.Fatal(err)
				}
				for j := range nodes {
					vecs[i][j] = max(vecs[i][j], m.vec[j])
				}
				record(i, ts)
			}
		}
		happenedBefore := func(e, f [nodes]int) bool {
			le, lt := true, false
			for j := range nodes {
				if e[j] > f[j] {
					le = false
				}
				if e[j] < f[j] {
					lt = true
				}
			}
			return le && lt
		}
		for x := range events {
			for y := range events {
				if happenedBefore(events[x].vec, events[y].vec) && Compare(events[x].ts, events[y].ts) >= 0 {
					t.Fatalf("event %v happened before %v but its HLC %v is not smaller than %v",
						events[x].vec, events[y].vec, Format(events[x].ts), Format(events[y].ts))
				}
			}
		}
	})
}
