package history

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is a round hour far from the wall clock: history computes time to live in business time, so the fake
// clock may sit anywhere.
var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

// harness is a History on a real Badger directory with a fake clock, reopened in place by reopen.
type harness struct {
	t   testing.TB
	dir string
	clk *clock.Fake
	cfg Config
	h   *History
}

func newHarness(t testing.TB, mod ...func(*Config)) *harness {
	t.Helper()
	x := &harness{t: t, dir: t.TempDir(), clk: clock.NewFake(t0)}
	x.cfg = DefaultConfig()
	x.cfg.Dir = x.dir
	x.cfg.Clock = x.clk
	x.cfg.Logger = slog.New(slog.DiscardHandler)
	for _, f := range mod {
		f(&x.cfg)
	}
	x.open()
	t.Cleanup(func() {
		if x.h != nil {
			_ = x.h.Close()
		}
	})
	return x
}

func (x *harness) open() {
	x.t.Helper()
	h, err := Open(x.cfg)
	if err != nil {
		x.t.Fatalf("open: %v", err)
	}
	x.h = h
}

// reopen closes and opens the history on the same directory: a restart.
func (x *harness) reopen() {
	x.t.Helper()
	if err := x.h.Close(); err != nil {
		x.t.Fatalf("close: %v", err)
	}
	x.open()
}

// appendAt sets the clock to now and appends.
func (x *harness) appendAt(now time.Time, samples ...*pb.Telemetry) AppendResult {
	x.t.Helper()
	x.clk.Set(now)
	r, err := x.h.Append(samples)
	if err != nil {
		x.t.Fatalf("append: %v", err)
	}
	return r
}

func (x *harness) series(id string, from, to time.Time, step time.Duration) *Series {
	x.t.Helper()
	s, err := x.h.Series(id, from, to, step)
	if err != nil {
		x.t.Fatalf("series %s: %v", id, err)
	}
	return s
}

func (x *harness) totals(group string, from, to time.Time, step time.Duration) *Totals {
	x.t.Helper()
	s, err := x.h.GroupTotals(group, from, to, step)
	if err != nil {
		x.t.Fatalf("totals %q: %v", group, err)
	}
	return s
}

// tel is a sample with the readings history keeps.
func tel(id string, at time.Time, ths, watts float64, state pb.MinerState) *pb.Telemetry {
	return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: at.UnixMilli(), State: state, Hashrate_5SThs: ths,
		HashrateAvgThs: ths - 1, PowerW: watts}
}

// sim is the simulated fleet's deterministic readings: miner i at tick k (5 s apart from start).
type sim struct {
	miners int
	start  time.Time
}

const simTick = 5 * time.Second

func minerID(i int) string { return fmt.Sprintf("sim-%d", i) }

func (s sim) at(k int) time.Time { return s.start.Add(time.Duration(k) * simTick) }

func (s sim) sample(i, k int) *pb.Telemetry {
	t := &pb.Telemetry{MinerId: minerID(i), ObservedAtUnixMs: s.at(k).UnixMilli(),
		State:          pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: 90 + float64(i%10) + 0.25*float64(k%12) + 0.01*float64(k%7),
		PowerW:         3000 + 10*float64(i%5) + float64(k%3),
		Boards: []*pb.Board{{TempC: 55 + float64(k%20)/2, ChipTempC: 65 + float64((k+i)%30)/3},
			{TempC: 56, ChipTempC: 66}},
		FansRpm: []int32{int32(5000 + k%50), int32(4800 + i%100)},
	}
	switch {
	case i%50 == 3 && (k/720)%3 == 1: // stopped one hour in three
		t.State, t.Hashrate_5SThs, t.PowerW = pb.MinerState_MINER_STATE_STOPPED, 0, 80
	case i%37 == 5 && k%240 >= 200: // unreachable for the last 200 s of every 20 minutes
		t.State, t.Hashrate_5SThs, t.PowerW, t.Boards, t.FansRpm = pb.MinerState_MINER_STATE_UNREACHABLE, 0, 0, nil, nil
	}
	return t
}

// want is a hand-computed bucket: the plain mean of the float32 readings history stores.
type want struct {
	n          int
	hSum, pSum float64
	hMin, hMax float64
	temp       float64
	fan        int
	state      pb.MinerState
	minutes    int // hours: minutes with samples; hSum, pSum are then sums of minute means
}

func (w *want) addSample(t *pb.Telemetry) {
	s := fromTelemetry(t)
	h := float64(s.hashrate)
	if w.n == 0 {
		w.hMin, w.hMax, w.temp, w.fan = h, h, math.Inf(-1), -1
	}
	w.n++
	w.hSum += h
	w.pSum += float64(s.power)
	w.hMin, w.hMax = min(w.hMin, h), max(w.hMax, h)
	if s.temp != noTemp {
		w.temp = max(w.temp, tempC(s.temp))
	}
	if s.fan != noFan && (w.fan < 0 || int(s.fan) < w.fan) {
		w.fan = int(s.fan)
	}
	w.state = t.GetState()
}

func (w *want) hMean() float64 {
	if w.minutes > 0 {
		return w.hSum / float64(w.minutes)
	}
	return w.hSum / float64(w.n)
}

func (w *want) pMean() float64 {
	if w.minutes > 0 {
		return w.pSum / float64(w.minutes)
	}
	return w.pSum / float64(w.n)
}

// close enough for float32 storage.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-5*max(1, math.Abs(want))
}

// openBadger opens a Badger directory directly (tests that share one with New, or inspect it).
func openBadger(t testing.TB, dir string) *badger.DB {
	t.Helper()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// longRun reports whether the full-size tests run: HASHFLEET_LONG=1 and not -short.
func longRun() bool { return os.Getenv("HASHFLEET_LONG") == "1" && !testing.Short() }

// keys lists the keys under prefix (values skipped); Badger hides expired ones.
func keys(t testing.TB, db *badger.DB, prefix string) [][]byte {
	t.Helper()
	var out [][]byte
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
