package telemetry

import (
	"math"
	"time"
)

// pacer is a token bucket over items (samples or events): rate per second, a burst of one second's worth.
// A batch larger than the burst goes out once the bucket is full and leaves it in debt, so the average rate
// holds whatever the batch size.
type pacer struct {
	rate, tokens float64
	last         time.Time
	primed       bool
}

func newPacer(perSecond int) pacer { return pacer{rate: float64(perSecond)} }

// reserve takes n items' worth of tokens at now and returns 0, or returns how long to wait before n can go
// (taking nothing). A zero rate is unbounded.
func (p *pacer) reserve(n int, now time.Time) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	if !p.primed {
		p.tokens, p.last, p.primed = p.rate, now, true
	}
	if dt := now.Sub(p.last).Seconds(); dt > 0 {
		p.tokens = math.Min(p.rate, p.tokens+dt*p.rate)
	}
	p.last = now
	need := math.Min(float64(n), p.rate)
	if p.tokens >= need {
		p.tokens -= float64(n)
		return 0
	}
	return time.Duration(math.Ceil((need - p.tokens) / p.rate * float64(time.Second)))
}
