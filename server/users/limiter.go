package users

import "time"

// loginState is the failed-login record of one user name or one client address.
type loginState struct {
	failures    int       // failures since windowStart
	windowStart time.Time // first failure of the window
	lockedUntil time.Time
	lockouts    int // lockouts inside the window (the lockout doubles with each)
}

// loginLimits are the limiter's settings (from Config).
type loginLimits struct {
	failures int
	window   time.Duration
	lockout  time.Duration
}

// maxLockoutFactor caps the doubling of the lockout.
const maxLockoutFactor = 16

// decideLogin says whether a login may be tried now, and if not, how long until it may.
func decideLogin(s loginState, now time.Time) (bool, time.Duration) {
	if now.Before(s.lockedUntil) {
		return false, s.lockedUntil.Sub(now)
	}
	return true, 0
}

// afterFailure is s after a failed login at now: failures older than the window are forgotten; the
// limit-th failure locks for the lockout, doubled for each earlier lockout in the window (capped).
func afterFailure(s loginState, now time.Time, l loginLimits) loginState {
	if s.windowStart.IsZero() || now.Sub(s.windowStart) > l.window {
		s = loginState{windowStart: now, lockedUntil: s.lockedUntil}
	}
	s.failures++
	if s.failures >= l.failures {
		factor := min(1<<s.lockouts, maxLockoutFactor)
		s.lockedUntil = now.Add(time.Duration(factor) * l.lockout)
		s.lockouts++
		s.failures = 0
	}
	return s
}

// expired reports whether s carries nothing any more at now (it can be forgotten).
func expired(s loginState, now time.Time, l loginLimits) bool {
	return !now.Before(s.lockedUntil) && now.Sub(s.windowStart) > l.window
}
