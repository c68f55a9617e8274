package history

import (
	"fmt"
	"time"
)

// plan is how a query reads: from which resolution, in which steps. Pure: now is passed in.
type plan struct {
	res  Resolution
	step int64 // ms
	from int64 // first step's start: aligned to step, not before the step holding cutoff
	to   int64 // exclusive
	// cutoff: records starting before it are past the resolution's retention (in business time) and are
	// not returned even if Badger has not dropped them yet.
	cutoff int64
	n      int // steps in [from, to)
}

// autoSteps are the steps a query with step 0 chooses from.
var autoSteps = []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// autoStep is the smallest of autoSteps giving at most points steps over span (multiples of 7 days beyond).
func autoStep(span int64, points int) int64 {
	for _, s := range autoSteps {
		ms := s.Milliseconds()
		if (span+ms-1)/ms <= int64(points) {
			return ms
		}
	}
	week := (7 * 24 * time.Hour).Milliseconds()
	per := (span + int64(points) - 1) / int64(points)
	return (per + week - 1) / week * week
}

// pickResolution chooses what to read for a range starting at from in steps of step: the coarsest
// resolution whose buckets tile the step (bucket length ≤ step and dividing it; raw samples tile any step)
// and that still holds from. When none that tiles the step reaches back to from, the finest one that does
// (the step is then raised to a multiple of its buckets). raw false: groups have no raw resolution.
func pickResolution(from, step, now int64, c *Config, raw bool) Resolution {
	covers := func(r Resolution) bool { return from >= now-c.retention(r).Milliseconds() }
	for _, r := range []Resolution{Hour, Minute, Raw} {
		if r == Raw && !raw {
			continue
		}
		if d := r.Duration().Milliseconds(); d > step || (d > 0 && step%d != 0) {
			continue
		}
		if covers(r) {
			return r
		}
		break // coarser resolutions are kept longer: a finer one does not reach back further
	}
	for _, r := range []Resolution{Raw, Minute, Hour} {
		if (r != Raw || raw) && covers(r) {
			return r
		}
	}
	return Hour
}

// planQuery plans a query of [from, to) with step (0: Config.AutoPoints points) at now.
func planQuery(from, to, step, now int64, c *Config, raw bool) (plan, error) {
	if to <= from || step < 0 {
		return plan{}, fmt.Errorf("%w: from %s to %s step %s", ErrInvalidRange, time.UnixMilli(from).UTC(),
			time.UnixMilli(to).UTC(), time.Duration(step)*time.Millisecond)
	}
	if step == 0 {
		step = autoStep(to-from, c.AutoPoints)
	}
	p := plan{res: pickResolution(from, step, now, c, raw), to: to}
	if d := p.res.Duration().Milliseconds(); d > 0 && step%d != 0 {
		step = (step/d + 1) * d
	}
	p.step = step
	p.cutoff = now - c.retention(p.res).Milliseconds()
	p.from = floorTo(max(from, p.cutoff), step)
	if p.to > p.from {
		n := (p.to - p.from + step - 1) / step
		if n > int64(c.MaxPoints) {
			return plan{}, fmt.Errorf("%w: %d steps of %s (at most %d): ask for a larger step", ErrTooManyPoints, n,
				time.Duration(step)*time.Millisecond, c.MaxPoints)
		}
		p.n = int(n)
	}
	return p, nil
}

// index is the step holding start; false when outside the plan or past retention.
func (p *plan) index(start int64) (int, bool) {
	if start < p.cutoff || start < p.from || start >= p.to {
		return 0, false
	}
	return int((start - p.from) / p.step), true
}

func (p *plan) stepStart(i int) int64 { return p.from + int64(i)*p.step }
