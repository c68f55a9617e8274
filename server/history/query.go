package history

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Queries take the read lock only to copy the in-memory open buckets and open a Badger read snapshot in
// the same instant (writes hold the lock until their batch is flushed, so the two agree: a bucket is either
// still open in memory or stored), then read without the lock.

// snapshot opens a read snapshot and counts it in flight, so Close waits for it. Caller holds mu (read).
func (h *History) snapshot() *badger.Txn {
	h.reads.Add(1)
	return h.db.NewTransaction(false)
}

func (h *History) release(txn *badger.Txn) {
	txn.Discard()
	h.reads.Done()
}

// Series is one miner's history over [from, to) in steps of step (0: about Config.AutoPoints points),
// read from the best resolution (see pickResolution): raw samples for short ranges and steps, minutes, or
// hours. The open minute and hour are included, so the newest point is current.
func (h *History) Series(minerID string, from, to time.Time, step time.Duration) (*Series, error) {
	if err := validID(minerID); err != nil {
		return nil, fmt.Errorf("series: %w", err)
	}
	p, err := planQuery(from.UnixMilli(), to.UnixMilli(), step.Milliseconds(), h.cfg.Clock.Now().UnixMilli(), &h.cfg, true)
	if err != nil {
		return nil, fmt.Errorf("series %s: %w", minerID, err)
	}
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil, ErrClosed
	}
	open := h.openAggs(minerID, p.res, nil)
	txn := h.snapshot()
	h.mu.RUnlock()
	defer h.release(txn)

	steps := make([]acc, p.n)
	if err := readMiner(txn, minerID, &p, open, steps); err != nil {
		return nil, fmt.Errorf("series %s: %w", minerID, err)
	}
	s := &Series{MinerID: minerID, Resolution: p.res, Step: time.Duration(p.step) * time.Millisecond,
		From: time.UnixMilli(p.from).UTC(), To: time.UnixMilli(p.to).UTC()}
	for i := range steps {
		if steps[i].weight > 0 {
			s.Points = append(s.Points, point(&steps[i]))
		}
	}
	return s, nil
}

// openAggs appends id's open buckets at res. Caller holds mu.
func (h *History) openAggs(id string, res Resolution, dst []agg) []agg {
	m := h.miners[id]
	if m == nil {
		return dst
	}
	switch res {
	case Minute:
		if a, ok := m.r.openMinute(); ok {
			dst = append(dst, a)
		}
	case Hour:
		dst = m.r.openHours(dst)
	}
	return dst
}

// readMiner folds id's stored records of the plan and its open buckets into steps.
func readMiner(txn *badger.Txn, id string, p *plan, open []agg, steps []acc) error {
	add := func(a agg) {
		i, ok := p.index(a.start)
		if !ok {
			return
		}
		st := &steps[i]
		if !st.open {
			st.reset(p.stepStart(i))
		}
		st.add(a, a.minutes)
	}
	if p.n == 0 {
		return nil
	}
	var err error
	if p.res == Raw {
		err = scanSeries(txn, pRaw, id, p.from, p.to, func(ts int64, v []byte) error {
			s, err := decodeSample(ts, v)
			add(sampleAgg(s))
			return err
		})
	} else {
		err = scanSeries(txn, minerPrefix(p.res), id, p.from, p.to, func(ts int64, v []byte) error {
			a, err := decodeBucket(ts, v)
			add(a)
			return err
		})
	}
	for _, a := range open {
		add(a)
	}
	return err
}

func point(a *acc) Point {
	g := a.result(a.weight)
	return Point{AtUnixMs: a.start, LastUnixMs: g.last, Samples: int(g.samples), HashrateTHs: g.hMean,
		HashrateMinTHs: g.hMin, HashrateMaxTHs: g.hMax, PowerW: g.pMean, EfficiencyJTH: efficiency(g.pMean, g.hMean),
		TempMaxC: tempC(g.temp), FanMinRPM: fanRPM(g.fan), State: pb.MinerState(g.state)}
}

func efficiency(powerW, hashrateTHs float64) float64 {
	if hashrateTHs <= 0 {
		return 0
	}
	return powerW / hashrateTHs
}

// Aggregate combines the series of the given miners step by step with fn: each miner's step mean (as in
// Series), then summed, averaged or maxed over the miners with data in the step. It reads every miner's
// series, so its cost grows with miners × steps; for a site, a node or the fleet use GroupTotals, which
// reads rollups kept at ingest.
func (h *History) Aggregate(minerIDs []string, from, to time.Time, step time.Duration, fn Fn) (*Totals, error) {
	if fn < Sum || fn > Max {
		return nil, fmt.Errorf("aggregate: %w: %d", ErrInvalidFn, fn)
	}
	if len(minerIDs) > h.cfg.MaxAggregateMiners {
		return nil, fmt.Errorf("aggregate: %w: %d (at most %d): register a group (SetGroups) and read GroupTotals",
			ErrTooManyMiners, len(minerIDs), h.cfg.MaxAggregateMiners)
	}
	for _, id := range minerIDs {
		if err := validID(id); err != nil {
			return nil, fmt.Errorf("aggregate: %w", err)
		}
	}
	p, err := planQuery(from.UnixMilli(), to.UnixMilli(), step.Milliseconds(), h.cfg.Clock.Now().UnixMilli(), &h.cfg, true)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	seen := make(map[string]bool, len(minerIDs))
	ids := make([]string, 0, len(minerIDs))
	opens := make([][]agg, 0, len(minerIDs))
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil, ErrClosed
	}
	for _, id := range minerIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
			opens = append(opens, h.openAggs(id, p.res, nil))
		}
	}
	txn := h.snapshot()
	h.mu.RUnlock()
	defer h.release(txn)

	steps := make([]acc, p.n)
	tot := make([]totalAcc, p.n)
	for i, id := range ids {
		clear(steps)
		if err := readMiner(txn, id, &p, opens[i], steps); err != nil {
			return nil, fmt.Errorf("aggregate: %w", err)
		}
		for j := range steps {
			if steps[j].weight > 0 {
				tot[j].add(steps[j].result(steps[j].weight))
			}
		}
	}
	t := &Totals{Fn: fn, Resolution: p.res, Step: time.Duration(p.step) * time.Millisecond,
		From: time.UnixMilli(p.from).UTC(), To: time.UnixMilli(p.to).UTC()}
	for j := range tot {
		if tot[j].miners > 0 {
			t.Points = append(t.Points, tot[j].point(p.stepStart(j), fn))
		}
	}
	return t, nil
}

// totalAcc combines miners' step means.
type totalAcc struct {
	miners             int
	hSum, pSum         float64
	hMax, pMax, effMax float64
	temp               int16
	states             map[pb.MinerState]int
}

func (t *totalAcc) add(g agg) {
	if t.miners == 0 {
		t.temp = noTemp
		t.states = map[pb.MinerState]int{}
	}
	t.miners++
	t.hSum += g.hMean
	t.pSum += g.pMean
	t.hMax = max(t.hMax, g.hMean)
	t.pMax = max(t.pMax, g.pMean)
	t.effMax = max(t.effMax, efficiency(g.pMean, g.hMean))
	t.temp = max(t.temp, g.temp)
	t.states[pb.MinerState(g.state)]++
}

func (t *totalAcc) point(at int64, fn Fn) TotalPoint {
	p := TotalPoint{AtUnixMs: at, Miners: t.miners, TempMaxC: tempC(t.temp), States: t.states}
	switch fn {
	case Sum:
		p.HashrateTHs, p.PowerW = t.hSum, t.pSum
		p.EfficiencyJTH = efficiency(p.PowerW, p.HashrateTHs)
	case Avg:
		p.HashrateTHs, p.PowerW = t.hSum/float64(t.miners), t.pSum/float64(t.miners)
		p.EfficiencyJTH = efficiency(p.PowerW, p.HashrateTHs)
	case Max:
		p.HashrateTHs, p.PowerW, p.EfficiencyJTH = t.hMax, t.pMax, t.effMax
	}
	return p
}

// FleetTotals is GroupTotals of the Fleet: every miner.
func (h *History) FleetTotals(from, to time.Time, step time.Duration) (*Totals, error) {
	return h.GroupTotals(Fleet, from, to, step)
}

// GroupTotals is a group's totals over [from, to) in steps of step (0: about Config.AutoPoints points),
// read from the group rollups kept at ingest (1-minute or 1-hour; a step under a minute is raised to one)
// plus its members' open buckets: hashrate and power summed over the miners and averaged over the step's
// minutes, efficiency, the hottest reading, and miners by state. Its cost is the steps read plus one pass
// over the members in memory, whatever the range.
func (h *History) GroupTotals(group string, from, to time.Time, step time.Duration) (*Totals, error) {
	p, err := planQuery(from.UnixMilli(), to.UnixMilli(), step.Milliseconds(), h.cfg.Clock.Now().UnixMilli(), &h.cfg, false)
	if err != nil {
		return nil, fmt.Errorf("group %q totals: %w", group, err)
	}
	open := map[int64]*gagg{}
	var buf []agg
	var lastStart int64 = -1 // most members' open buckets share a start: skip the map lookup
	var last *gagg
	addOpen := func(m *minerState) {
		if m == nil {
			return
		}
		buf = buf[:0]
		if p.res == Minute {
			if a, ok := m.r.openMinute(); ok {
				buf = append(buf, a)
			}
		} else {
			buf = m.r.openHours(buf)
		}
		for _, a := range buf {
			if _, ok := p.index(a.start); !ok {
				continue
			}
			if a.start != lastStart {
				if last = open[a.start]; last == nil {
					n := newGagg()
					last = &n
					open[a.start] = last
				}
				lastStart = a.start
			}
			last.add(a)
		}
	}
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil, ErrClosed
	}
	gi, ok := h.groups.byName[group]
	if !ok {
		h.mu.RUnlock()
		return nil, fmt.Errorf("group totals: %w: %q", ErrUnknownGroup, group)
	}
	if gi == 0 {
		for _, m := range h.miners {
			addOpen(m)
		}
	} else {
		for _, id := range h.groups.members[gi] {
			addOpen(h.miners[id])
		}
	}
	txn := h.snapshot()
	h.mu.RUnlock()
	defer h.release(txn)

	steps := make([]groupAcc, p.n)
	fold := func(start int64, g *gagg) {
		if i, ok := p.index(start); ok {
			steps[i].add(start, g)
		}
	}
	if p.n > 0 {
		err = scanSeries(txn, groupPrefix(p.res), group, p.from, p.to, func(ts int64, v []byte) error {
			g, err := decodeGroupBucket(v)
			if err != nil {
				return err
			}
			if o := open[ts]; o != nil {
				g.merge(*o)
				delete(open, ts)
			}
			fold(ts, &g)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("group %q totals: %w", group, err)
		}
	}
	for start, g := range open {
		fold(start, g)
	}
	t := &Totals{Group: group, Fn: Sum, Resolution: p.res, Step: time.Duration(p.step) * time.Millisecond,
		From: time.UnixMilli(p.from).UTC(), To: time.UnixMilli(p.to).UTC()}
	for i := range steps {
		if steps[i].minutes > 0 {
			t.Points = append(t.Points, steps[i].point(p.stepStart(i)))
		}
	}
	return t, nil
}

// groupAcc folds a group's buckets into one step: sums averaged over the buckets' minutes, states of the
// newest bucket.
type groupAcc struct {
	minutes    uint32
	miners     uint32
	hSum, pSum float64
	temp       int16
	newest     int64
	states     []uint32
}

func (s *groupAcc) add(start int64, g *gagg) {
	if s.minutes == 0 {
		s.temp = noTemp
		s.newest = start
		s.states = g.states
	}
	s.minutes += g.minutes
	s.miners = max(s.miners, g.miners)
	s.hSum += g.hSum
	s.pSum += g.pSum
	s.temp = max(s.temp, g.temp)
	if start >= s.newest {
		s.newest, s.states = start, g.states
	}
}

func (s *groupAcc) point(at int64) TotalPoint {
	p := TotalPoint{AtUnixMs: at, Miners: int(s.miners), HashrateTHs: s.hSum / float64(s.minutes),
		PowerW: s.pSum / float64(s.minutes), TempMaxC: tempC(s.temp), States: stateMap(s.states)}
	p.EfficiencyJTH = efficiency(p.PowerW, p.HashrateTHs)
	return p
}

func stateMap(c []uint32) map[pb.MinerState]int {
	m := make(map[pb.MinerState]int, len(c))
	for i, n := range c {
		if n > 0 {
			m[pb.MinerState(i)] = int(n)
		}
	}
	return m
}

// Live is a group's totals now, from each member's newest sample: hashrate and power summed over the
// members that reported within Config.StaleAfter, miners by state, and the stale members counted apart.
// It reads memory only.
func (h *History) Live(group string) (TotalPoint, error) {
	now := h.cfg.Clock.Now().UnixMilli()
	fresh := now - h.cfg.StaleAfter.Milliseconds()
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return TotalPoint{}, ErrClosed
	}
	gi, ok := h.groups.byName[group]
	if !ok {
		return TotalPoint{}, fmt.Errorf("live: %w: %q", ErrUnknownGroup, group)
	}
	p := TotalPoint{AtUnixMs: now}
	temp := noTemp
	var states [256]uint32
	add := func(m *minerState) {
		if m == nil || m.last.ts < fresh {
			p.Stale++
			return
		}
		p.Miners++
		p.HashrateTHs += float64(m.last.hashrate)
		p.PowerW += float64(m.last.power)
		temp = max(temp, m.last.temp)
		states[m.last.state]++
	}
	if gi == 0 {
		for _, m := range h.miners {
			add(m)
		}
	} else {
		for _, id := range h.groups.members[gi] {
			add(h.miners[id])
		}
	}
	p.TempMaxC = tempC(temp)
	p.EfficiencyJTH = efficiency(p.PowerW, p.HashrateTHs)
	p.States = stateMap(states[:])
	return p, nil
}

// At is a group's totals at a moment: Live when at is within Config.StaleAfter of now, else the 1-minute
// bucket holding at (the 1-hour bucket beyond the minute retention). States then counts miners by their
// newest state in that bucket. A moment without data gives a point with no miners.
func (h *History) At(group string, at time.Time) (TotalPoint, error) {
	now := h.cfg.Clock.Now()
	if !at.Before(now.Add(-h.cfg.StaleAfter)) {
		return h.Live(group)
	}
	d := time.Minute
	if at.Before(now.Add(-h.cfg.MinuteRetention)) {
		d = time.Hour
	}
	start := time.UnixMilli(floorTo(at.UnixMilli(), d.Milliseconds()))
	t, err := h.GroupTotals(group, start, start.Add(d), d)
	if err != nil {
		return TotalPoint{}, err
	}
	if len(t.Points) == 0 {
		return TotalPoint{AtUnixMs: start.UnixMilli(), States: map[pb.MinerState]int{}}, nil
	}
	return t.Points[0], nil
}
