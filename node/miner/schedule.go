package miner

import "time"

// firstPollDelay spreads the first polls of a site over one interval: r in [0,1).
func firstPollDelay(interval time.Duration, r float64) time.Duration {
	return time.Duration(r * float64(interval))
}

// nextPollDelay is the wait from now until the next poll: interval ± jitter (r in [0,1) picks the point),
// measured from the start of the poll that just finished (spent ago), never negative.
func nextPollDelay(interval, jitter, spent time.Duration, r float64) time.Duration {
	d := interval + time.Duration((2*r-1)*float64(jitter)) - spent
	return max(d, 0)
}
