package history

// The per-miner rollup state machine, pure: no I/O, time passed in. History feeds it each accepted sample in
// time order and writes the buckets it closes; recovery rebuilds it from what is stored.

const (
	minuteMs = 60_000
	hourMs   = 3_600_000
)

// floorTo is the start of the d-long bucket holding ts (floor division, correct for negative ts too).
func floorTo(ts, d int64) int64 {
	q := ts / d
	if ts%d < 0 {
		q--
	}
	return q * d
}

// acc accumulates one open bucket: a minute from samples (weight = samples) or an hour from closed minutes
// (weight = minutes).
type acc struct {
	open       bool
	start      int64
	last       int64
	samples    uint32
	weight     uint32
	hSum, pSum float64
	hMin, hMax float64
	temp       int16
	fan        uint16
	state      uint8
}

func (a *acc) reset(start int64) {
	*a = acc{open: true, start: start, temp: noTemp, fan: noFan}
}

// add folds in one bucket (a raw sample as sampleAgg, or a closed minute) with its weight.
func (a *acc) add(g agg, weight uint32) {
	if a.weight == 0 {
		a.hMin, a.hMax = g.hMin, g.hMax
	} else {
		a.hMin, a.hMax = min(a.hMin, g.hMin), max(a.hMax, g.hMax)
	}
	a.samples += g.samples
	a.weight += weight
	a.hSum += g.hMean * float64(weight)
	a.pSum += g.pMean * float64(weight)
	a.temp = max(a.temp, g.temp)
	a.fan = min(a.fan, g.fan)
	if g.last >= a.last {
		a.last, a.state = g.last, g.state
	}
}

// result is the bucket so far; minutes is its weight when averaged with others (1 for a minute).
func (a *acc) result(minutes uint32) agg {
	g := agg{start: a.start, last: a.last, samples: a.samples, minutes: minutes, hMin: a.hMin, hMax: a.hMax,
		temp: a.temp, fan: a.fan, state: a.state}
	if a.weight > 0 {
		g.hMean = a.hSum / float64(a.weight)
		g.pMean = a.pSum / float64(a.weight)
	}
	return g
}

func (a *acc) minuteAgg() agg { return a.result(1) }
func (a *acc) hourAgg() agg   { return a.result(a.weight) }

// closedBucket is a bucket the state machine closed: History writes it and adds it to the miner's groups.
type closedBucket struct {
	res Resolution
	agg agg
}

// outcome of offering one sample.
type outcome uint8

const (
	accepted  outcome = iota + 1
	duplicate         // at or before the newest sample: dropped
	late              // newer than the newest sample, but its minute was closed by grace: raw only
)

// rollup is one miner's open minute and hour.
type rollup struct {
	lastTs int64 // newest sample accepted
	minute acc
	hour   acc
	// minuteDone and hourDone: every bucket starting before them is closed.
	minuteDone int64
	hourDone   int64
}

// add offers one sample. Samples must come in time order: one at or before the newest is a duplicate. A
// sample in a later minute than the open one closes it first.
func (r *rollup) add(s sample, out []closedBucket) ([]closedBucket, outcome) {
	if s.ts <= r.lastTs {
		return out, duplicate
	}
	r.lastTs = s.ts
	m := floorTo(s.ts, minuteMs)
	if m < r.minuteDone {
		return out, late
	}
	if r.minute.open && m != r.minute.start {
		out = r.closeMinute(out)
	}
	if !r.minute.open {
		r.minute.reset(m)
	}
	r.minute.add(sampleAgg(s), 1)
	return out, accepted
}

func (r *rollup) closeMinute(out []closedBucket) []closedBucket {
	g := r.minute.minuteAgg()
	r.minute.open = false
	r.minuteDone = g.start + minuteMs
	out = append(out, closedBucket{Minute, g})
	return r.foldMinute(g, out)
}

// foldMinute adds a closed minute to its hour, closing the open hour first when the minute is in a later one.
// A minute whose hour was already closed by grace stays minute-only.
func (r *rollup) foldMinute(g agg, out []closedBucket) []closedBucket {
	h := floorTo(g.start, hourMs)
	if h < r.hourDone {
		return out
	}
	if r.hour.open && h != r.hour.start {
		out = r.closeHour(out)
	}
	if !r.hour.open {
		r.hour.reset(h)
	}
	r.hour.add(g, g.minutes)
	return out
}

func (r *rollup) closeHour(out []closedBucket) []closedBucket {
	g := r.hour.hourAgg()
	r.hour.open = false
	r.hourDone = g.start + hourMs
	return append(out, closedBucket{Hour, g})
}

// expire closes the buckets no sample can join any more at now: a minute once now is past its end by
// minuteGrace, an hour once past its end by hourGrace (hourGrace ≥ minuteGrace, so an hour's last minute is
// closed before the hour).
func (r *rollup) expire(now, minuteGrace, hourGrace int64, out []closedBucket) []closedBucket {
	if r.minute.open && now >= r.minute.start+minuteMs+minuteGrace {
		out = r.closeMinute(out)
	}
	if r.hour.open && now >= r.hour.start+hourMs+hourGrace {
		out = r.closeHour(out)
	}
	return out
}

// idle reports whether nothing is open.
func (r *rollup) idle() bool { return !r.minute.open && !r.hour.open }

// openMinute is the open minute so far.
func (r *rollup) openMinute() (agg, bool) {
	if !r.minute.open {
		return agg{}, false
	}
	return r.minute.minuteAgg(), true
}

// openHours is what the open hour would be if closed now, with the open minute folded in: one bucket, or two
// when the open minute is already in the next hour (the hour closes when that minute does).
func (r *rollup) openHours(dst []agg) []agg {
	m, mok := r.openMinute()
	if r.hour.open {
		h := r.hour
		if mok && floorTo(m.start, hourMs) == h.start {
			h.add(m, 1)
			mok = false
		}
		dst = append(dst, h.hourAgg())
	}
	if mok && floorTo(m.start, hourMs) >= r.hourDone {
		var h acc
		h.reset(floorTo(m.start, hourMs))
		h.add(m, 1)
		dst = append(dst, h.hourAgg())
	}
	return dst
}

// restored is what recovery reads back for one miner.
type restored struct {
	lastHour, lastMinute *agg     // newest stored buckets, if any
	minutes              []agg    // stored minutes starting at or after the end of lastHour, oldest first
	raw                  []sample // raw samples at or after the end of lastMinute, oldest first
}

// recoverRollup rebuilds a miner's open buckets after a restart: the open hour from the stored minutes after
// the last stored hour, the open minute from the raw samples after the last stored minute. Buckets a crash
// left unwritten (a minute with raw samples and a later one, an hour with minutes and a later one) are closed
// again and returned to be written.
func recoverRollup(in restored) (rollup, []closedBucket) {
	var r rollup
	if h := in.lastHour; h != nil {
		r.hourDone = h.start + hourMs
		r.lastTs = max(r.lastTs, h.last)
	}
	if m := in.lastMinute; m != nil {
		r.minuteDone = m.start + minuteMs
		r.lastTs = max(r.lastTs, m.last)
	}
	var out []closedBucket
	for _, m := range in.minutes {
		if m.start >= r.hourDone {
			out = r.foldMinute(m, out)
		}
	}
	for _, s := range in.raw {
		if s.ts >= r.minuteDone {
			out, _ = r.add(s, out)
		}
	}
	return r, out
}
