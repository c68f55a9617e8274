package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestMissedBetween(t *testing.T) {
	const d = 100
	for _, tc := range []struct{ gap, want int64 }{
		{50, 0}, {100, 0}, {101, 1}, {199, 1}, {200, 1}, {201, 2}, {350, 3},
	} {
		if got := missedBetween(tc.gap, d); got != tc.want {
			t.Errorf("missedBetween(%d, %d) = %d, want %d", tc.gap, d, got, tc.want)
		}
	}
	for _, tc := range []struct{ since, want int64 }{
		{0, 0}, {100, 0}, {101, 1}, {199, 1}, {200, 2}, {350, 3},
	} {
		if got := owedAtEnd(tc.since, d); got != tc.want {
			t.Errorf("owedAtEnd(%d, %d) = %d, want %d", tc.since, d, got, tc.want)
		}
	}
}

// TestRecorderScenarios feeds the recorder poll times of a few miners (in ms from the window's start; the
// window is [0, 1000), the deadline 100) and checks its account.
func TestRecorderScenarios(t *testing.T) {
	const deadline = 100 * time.Millisecond
	for _, tc := range []struct {
		name   string
		polls  [][]int // per miner, poll starts
		failed map[int]bool
		want   lagStats
	}{
		{
			name:  "on time",
			polls: [][]int{{-50, 40, 130, 220, 310, 400, 490, 580, 670, 760, 850, 940}},
			want:  lagStats{polls: 11, maxGap: 90 * time.Millisecond},
		},
		{
			name:  "one late poll",
			polls: [][]int{{-50, 40, 130, 260, 350, 440, 530, 620, 710, 800, 890, 980}},
			want:  lagStats{polls: 11, late: 1, lagPolls: 1, laggingMiners: 1, maxGap: 130 * time.Millisecond},
		},
		{
			name:  "polls stop: what is owed at the end counts",
			polls: [][]int{{-50, 40, 130, 220, 310, 400, 490}},
			want:  lagStats{polls: 6, lagPolls: 5, owedAtEnd: 5, laggingMiners: 1, maxGap: 510 * time.Millisecond},
		},
		{
			name:  "skipped polls",
			polls: [][]int{{-50, 40, 390, 480, 570, 660, 750, 840, 930}},
			want:  lagStats{polls: 8, late: 1, lagPolls: 3, laggingMiners: 1, maxGap: 350 * time.Millisecond},
		},
		{
			name:  "never polled, polled only before, and polls after the window ignored",
			polls: [][]int{{}, {-90, 1050}, {-50, 40, 130, 220, 310, 400, 490, 580, 670, 760, 850, 940, 1030}},
			want: lagStats{polls: 11, neverPolled: 1, lagPolls: 10 + 10, owedAtEnd: 20, laggingMiners: 2,
				maxGap: 1090 * time.Millisecond},
		},
		{
			name:   "failures are polls, counted apart",
			polls:  [][]int{{-50, 40, 130, 220, 310, 400, 490, 580, 670, 760, 850, 940}},
			failed: map[int]bool{130: true, 400: true},
			want:   lagStats{polls: 11, failed: 2, maxGap: 90 * time.Millisecond},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devs := make([]*pb.Device, len(tc.polls))
			for i := range devs {
				devs[i] = &pb.Device{MinerId: fmt.Sprint("m", i)}
			}
			r := newRecorder(devs, deadline)
			base := time.Unix(1_000_000, 0)
			at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
			// Feed polls in time order across miners, before and after the window is set, as a run does.
			type ev struct{ miner, ms int }
			var evs []ev
			for i, ps := range tc.polls {
				for _, ms := range ps {
					evs = append(evs, ev{i, ms})
				}
			}
			slices.SortStableFunc(evs, func(a, b ev) int { return a.ms - b.ms })
			for _, e := range evs {
				if e.ms >= 0 && r.ws.Load() == 0 {
					r.setWindow(at(0), at(1000))
				}
				var err error
				if tc.failed[e.ms] {
					err = errors.New("refused")
				}
				r.done(e.miner, at(e.ms), err)
			}
			if r.ws.Load() == 0 {
				r.setWindow(at(0), at(1000))
			}
			if got := r.summarize(); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	vals := make([]time.Duration, 0, 10000)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := time.Duration(rnd.ExpFloat64() * float64(time.Millisecond))
		vals = append(vals, v)
		h.add(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%.2f = %s, want %s ±2%%", q, got, want)
		}
	}
	if time.Duration(h.max.Load()) != vals[len(vals)-1] {
		t.Errorf("max %s, want %s", time.Duration(h.max.Load()), vals[len(vals)-1])
	}
	// Every bucket's bounds contain the values that map to it.
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1 << 20, 1<<20 + 12345, 1 << 62} {
		lo, hi := histBounds(histBucket(v))
		if v < lo || v > hi {
			t.Errorf("%d maps to bucket [%d, %d]", v, lo, hi)
		}
	}
}

func TestProcParsers(t *testing.T) {
	stat := "4242 (sim (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 100 0 0"
	if d, ok := parseStatCPU([]byte(stat)); !ok || d != 3800*time.Millisecond {
		t.Errorf("parseStatCPU = %s %v, want 3.8s", d, ok)
	}
	if _, ok := parseStatCPU([]byte("garbage")); ok {
		t.Error("parseStatCPU accepted garbage")
	}
	busy, total := parseCPULine("cpu  100 5 50 800 40 3 2 0 7 0")
	if busy != 160 || total != 1000 {
		t.Errorf("parseCPULine = %d/%d, want 160/1000", busy, total)
	}
	if processCPU() <= 0 || rssBytes() == 0 {
		t.Errorf("processCPU %s, rss %d: /proc and getrusage not read", processCPU(), rssBytes())
	}
}
