package spool

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Downsample folds samples into one sample per miner per window (the spool uses 1-minute windows). Readings
// are averaged over the window's samples: hashrates (5 s and average), power, efficiency (over samples that
// had one), poll latency, per-board temperatures and hashrate (over samples that had the board) and per-slot
// fan speeds. Everything else (state, pools, uptime, identity, errors, work mode, power target, poll error)
// comes from the newest sample, and so does observed_at, so a miner's samples stay in time order around an
// aggregate. The output is ordered by window, then miner id. Samples are not modified.
func Downsample(samples []*pb.Telemetry, window time.Duration) []*pb.Telemetry {
	a := newAggregator(window)
	for _, s := range samples {
		a.add(s)
	}
	return a.result()
}

type groupKey struct {
	miner  string
	bucket int64
}

type aggregator struct {
	windowMs int64
	groups   map[groupKey]*acc
}

func newAggregator(window time.Duration) *aggregator {
	return &aggregator{windowMs: max(window.Milliseconds(), 1), groups: map[groupKey]*acc{}}
}

// bucketOf is the window a timestamp falls in (floor division, so times before 1970 bucket correctly too).
func bucketOf(ms, windowMs int64) int64 {
	b := ms / windowMs
	if ms%windowMs < 0 {
		b--
	}
	return b
}

func (a *aggregator) add(s *pb.Telemetry) {
	k := groupKey{s.GetMinerId(), bucketOf(s.GetObservedAtUnixMs(), a.windowMs)}
	g := a.groups[k]
	if g == nil {
		g = &acc{}
		a.groups[k] = g
	}
	g.add(s)
}

func (a *aggregator) len() int { return len(a.groups) }

// result returns the aggregates ordered by (window, miner).
func (a *aggregator) result() []*pb.Telemetry {
	keys := make([]groupKey, 0, len(a.groups))
	for k := range a.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y groupKey) int {
		if c := cmp.Compare(x.bucket, y.bucket); c != 0 {
			return c
		}
		return cmp.Compare(x.miner, y.miner)
	})
	out := make([]*pb.Telemetry, 0, len(keys))
	for _, k := range keys {
		out = append(out, a.groups[k].result())
	}
	return out
}

type mean struct {
	sum float64
	n   int
}

func (m *mean) add(v float64) { m.sum += v; m.n++ }

func (m mean) value() float64 {
	if m.n == 0 {
		return 0
	}
	return m.sum / float64(m.n)
}

type boardAcc struct {
	index            int32
	temp, chip, rate mean
}

// acc accumulates one miner's samples in one window.
type acc struct {
	last                     *pb.Telemetry
	h5, havg, power, latency mean
	eff                      mean
	boards                   []boardAcc
	fans                     []mean
}

func (g *acc) add(s *pb.Telemetry) {
	if g.last == nil || s.GetObservedAtUnixMs() >= g.last.GetObservedAtUnixMs() {
		g.last = s
	}
	g.h5.add(s.GetHashrate_5SThs())
	g.havg.add(s.GetHashrateAvgThs())
	g.power.add(s.GetPowerW())
	g.latency.add(float64(s.GetPollLatencyUs()))
	if e := s.GetEfficiencyJth(); e > 0 {
		g.eff.add(e)
	}
	for _, b := range s.GetBoards() {
		i := slices.IndexFunc(g.boards, func(x boardAcc) bool { return x.index == b.GetIndex() })
		if i < 0 {
			g.boards = append(g.boards, boardAcc{index: b.GetIndex()})
			i = len(g.boards) - 1
		}
		g.boards[i].temp.add(b.GetTempC())
		g.boards[i].chip.add(b.GetChipTempC())
		g.boards[i].rate.add(b.GetHashrateThs())
	}
	for i, f := range s.GetFansRpm() {
		if i >= len(g.fans) {
			g.fans = append(g.fans, make([]mean, i+1-len(g.fans))...)
		}
		g.fans[i].add(float64(f))
	}
}

func (g *acc) result() *pb.Telemetry {
	out := proto.Clone(g.last).(*pb.Telemetry)
	out.Hashrate_5SThs = g.h5.value()
	out.HashrateAvgThs = g.havg.value()
	out.PowerW = g.power.value()
	out.EfficiencyJth = g.eff.value()
	out.PollLatencyUs = int64(math.Round(g.latency.value()))
	boards := make([]*pb.Board, 0, len(g.boards))
	for _, b := range g.boards {
		nb := &pb.Board{Index: b.index, TempC: b.temp.value(), ChipTempC: b.chip.value(), HashrateThs: b.rate.value()}
		if i := slices.IndexFunc(out.GetBoards(), func(x *pb.Board) bool { return x.GetIndex() == b.index }); i >= 0 {
			nb.Chips = out.GetBoards()[i].GetChips()
		}
		boards = append(boards, nb)
	}
	slices.SortStableFunc(boards, func(x, y *pb.Board) int { return cmp.Compare(x.GetIndex(), y.GetIndex()) })
	out.Boards = boards
	if len(g.fans) > 0 {
		out.FansRpm = make([]int32, len(g.fans))
		for i, f := range g.fans {
			out.FansRpm[i] = int32(math.Round(f.value()))
		}
	}
	return out
}
