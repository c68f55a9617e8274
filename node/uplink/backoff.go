package uplink

import (
	"fmt"
	"time"
)

// Backoff is the reconnect policy: jittered exponential backoff with a cap, reset once a link stayed up long
// enough to count as stable.
type Backoff struct {
	// Initial is the delay before the first retry. Default 1s.
	Initial time.Duration
	// Max caps every delay, jitter included. Default 30s.
	Max time.Duration
	// Jitter scales each delay by a uniform factor in [1-Jitter, 1+Jitter], so a cloud restart is not met by
	// every node of the fleet in the same second. Default 0.2.
	Jitter float64
	// StableAfter is how long a link must stay up for the next drop to start again from Initial; a link that
	// flaps faster keeps backing off. Default 1m.
	StableAfter time.Duration
}

// DefaultBackoff returns the defaults documented on Backoff.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 30 * time.Second, Jitter: 0.2, StableAfter: time.Minute}
}

// Validate reports a policy an operator must fix.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("uplink backoff: initial delay %s must be positive", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("uplink backoff: max delay %s is below the initial delay %s", b.Max, b.Initial)
	case b.Jitter < 0 || b.Jitter >= 1:
		return fmt.Errorf("uplink backoff: jitter %v must be in [0, 1)", b.Jitter)
	case b.StableAfter <= 0:
		return fmt.Errorf("uplink backoff: stable period %s must be positive", b.StableAfter)
	}
	return nil
}

// Delay is the wait before retry number attempt (0 for the first retry): Initial·2^attempt, scaled by the
// jitter factor r in [0,1), capped at Max.
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	d := b.Initial
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	f := 1 - b.Jitter + 2*b.Jitter*r
	return min(time.Duration(float64(d)*f), b.Max)
}

// Next decides the retry after a failure: upFor is how long the link had been up before this failure (0 when a
// connection attempt failed). It returns the delay and the attempt count to remember.
func (b Backoff) Next(attempts int, upFor time.Duration, r float64) (delay time.Duration, next int) {
	if upFor >= b.StableAfter {
		attempts = 0
	}
	return b.Delay(attempts, r), attempts + 1
}

// GoawayDelay is the wait the cloud asked for plus a jitter of up to Initial·Jitter·2, so nodes told to go
// away together do not all come back in the same millisecond.
func (b Backoff) GoawayDelay(reconnectAfter time.Duration, r float64) time.Duration {
	return max(reconnectAfter, 0) + time.Duration(2*b.Jitter*r*float64(b.Initial))
}
