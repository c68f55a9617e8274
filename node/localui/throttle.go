package localui

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// LoginPolicy is the failed-login lockout policy. It is applied separately per client address and per user:
// a login is refused while either is locked out.
//
// The n-th consecutive failure of a key, for n ≥ Threshold, locks the key out for
// BaseLockout × 2^(n−Threshold), at most MaxLockout. With the defaults: 4 failures are free, the 5th locks
// for 30s, the 6th for 1m, then 2m, 4m, 8m, and 15m from the 10th on. Attempts during a lockout are refused
// without checking the password and do not count. A success clears the client's and the user's failures; a
// key with no failure for ForgetAfter starts again from zero.
//
// Per-user lockout means someone on the site LAN who keeps guessing can keep the local admin out for up to
// MaxLockout at a time; per-address lockout alone would let a guesser with many addresses go on for ever.
// The bounded MaxLockout is the trade-off: a real operator waits at most 15 minutes.
type LoginPolicy struct {
	// Threshold is the consecutive failure that first locks a key out. Default 5.
	Threshold int
	// BaseLockout is the first lockout; each further failure doubles it. Default 30s.
	BaseLockout time.Duration
	// MaxLockout caps a lockout. Default 15m.
	MaxLockout time.Duration
	// ForgetAfter: a key whose last failure is this old, and which is not locked, is forgotten. Default 1h.
	ForgetAfter time.Duration
	// MaxTracked bounds the keys (addresses and users) tracked; beyond it the least recently failed
	// unlocked key is forgotten first. Default 10000.
	MaxTracked int
}

// DefaultLoginPolicy returns the defaults documented on LoginPolicy.
func DefaultLoginPolicy() LoginPolicy {
	return LoginPolicy{Threshold: 5, BaseLockout: 30 * time.Second, MaxLockout: 15 * time.Minute,
		ForgetAfter: time.Hour, MaxTracked: 10000}
}

func (p LoginPolicy) withDefaults() LoginPolicy {
	d := DefaultLoginPolicy()
	if p.Threshold == 0 {
		p.Threshold = d.Threshold
	}
	if p.BaseLockout == 0 {
		p.BaseLockout = d.BaseLockout
	}
	if p.MaxLockout == 0 {
		p.MaxLockout = d.MaxLockout
	}
	if p.ForgetAfter == 0 {
		p.ForgetAfter = d.ForgetAfter
	}
	if p.MaxTracked == 0 {
		p.MaxTracked = d.MaxTracked
	}
	return p
}

// Validate reports a policy an operator must fix, after defaults are applied to zero fields.
func (p LoginPolicy) Validate() error {
	p = p.withDefaults()
	switch {
	case p.Threshold < 1:
		return fmt.Errorf("local UI: login lockout threshold %d must be at least 1: %w", p.Threshold, ErrInvalidConfig)
	case p.BaseLockout < 0 || p.MaxLockout < p.BaseLockout:
		return fmt.Errorf("local UI: lockout base %s must be positive and at most the maximum %s: %w",
			p.BaseLockout, p.MaxLockout, ErrInvalidConfig)
	case p.ForgetAfter < p.MaxLockout:
		return fmt.Errorf("local UI: failures must be remembered (%s) at least as long as the longest lockout (%s): %w",
			p.ForgetAfter, p.MaxLockout, ErrInvalidConfig)
	case p.MaxTracked < 1:
		return fmt.Errorf("local UI: login tracking bound %d must be at least 1: %w", p.MaxTracked, ErrInvalidConfig)
	}
	return nil
}

// failState is what the policy remembers of one key.
type failState struct {
	Failures    int
	LastFailure time.Time
	LockedUntil time.Time
}

// lockout is how long the n-th consecutive failure locks a key out (0 below the threshold).
func (p LoginPolicy) lockout(n int) time.Duration {
	if n < p.Threshold {
		return 0
	}
	d := p.BaseLockout
	for i := p.Threshold; i < n; i++ {
		d *= 2
		if d >= p.MaxLockout {
			return p.MaxLockout
		}
	}
	return min(d, p.MaxLockout)
}

// decide is the pure check: may a key in state st attempt a login at now, and if not, for how long not.
// It also returns the state with stale failures forgotten.
func (p LoginPolicy) decide(st failState, now time.Time) (next failState, retryAfter time.Duration) {
	if now.Before(st.LockedUntil) {
		return st, st.LockedUntil.Sub(now)
	}
	if st.Failures > 0 && now.Sub(st.LastFailure) >= p.ForgetAfter {
		return failState{}, 0
	}
	return st, 0
}

// fail is the pure transition of a failed attempt at now.
func (p LoginPolicy) fail(st failState, now time.Time) failState {
	st, _ = p.decide(st, now)
	st.Failures++
	st.LastFailure = now
	if d := p.lockout(st.Failures); d > 0 {
		st.LockedUntil = now.Add(d)
	}
	return st
}

// throttle holds the policy's state for every key. Keys are "ip:<prefix>" and "user:<name>".
type throttle struct {
	p  LoginPolicy
	mu sync.Mutex
	m  map[string]failState
}

func newThrottle(p LoginPolicy) *throttle {
	return &throttle{p: p, m: make(map[string]failState)}
}

// check returns how long the longest-locked of keys stays locked (0: the attempt may go ahead).
func (t *throttle) check(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		st, ok := t.m[k]
		if !ok {
			continue
		}
		next, d := t.p.decide(st, now)
		if next == (failState{}) {
			delete(t.m, k)
		} else {
			t.m[k] = next
		}
		wait = max(wait, d)
	}
	return wait
}

// failed records a failure for every key and returns the longest lockout it started (0: none).
func (t *throttle) failed(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var locked time.Duration
	for _, k := range keys {
		if _, ok := t.m[k]; !ok && len(t.m) >= t.p.MaxTracked {
			t.evictLocked(now)
		}
		st := t.p.fail(t.m[k], now)
		t.m[k] = st
		if st.LockedUntil.After(now) {
			locked = max(locked, st.LockedUntil.Sub(now))
		}
	}
	return locked
}

// succeeded forgets the keys' failures.
func (t *throttle) succeeded(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.m, k)
	}
}

// evictLocked forgets stale keys, and if that frees nothing, the unlocked key that failed longest ago (or,
// with every key locked, the one whose lockout ends first).
func (t *throttle) evictLocked(now time.Time) {
	var victim string
	var victimState failState
	for k, st := range t.m {
		if next, _ := t.p.decide(st, now); next == (failState{}) {
			delete(t.m, k)
			continue
		}
		if victim == "" || older(st, victimState, now) {
			victim, victimState = k, st
		}
	}
	if len(t.m) >= t.p.MaxTracked && victim != "" {
		delete(t.m, victim)
	}
}

func older(a, b failState, now time.Time) bool {
	aLocked, bLocked := now.Before(a.LockedUntil), now.Before(b.LockedUntil)
	if aLocked != bLocked {
		return !aLocked
	}
	if aLocked {
		return a.LockedUntil.Before(b.LockedUntil)
	}
	return a.LastFailure.Before(b.LastFailure)
}

// clientKey is the throttle key of a client address: the IPv4 address, or the /64 of an IPv6 address (one
// host can pick any address in its /64).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "ip:" + host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + addr.String()
}
