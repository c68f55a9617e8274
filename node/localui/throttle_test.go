package localui

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestLockoutDurations(t *testing.T) {
	p := DefaultLoginPolicy()
	want := map[int]time.Duration{1: 0, 4: 0, 5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute, 8: 4 * time.Minute,
		9: 8 * time.Minute, 10: 15 * time.Minute, 11: 15 * time.Minute, 1000: 15 * time.Minute}
	for n, d := range want {
		if got := p.lockout(n); got != d {
			t.Errorf("lockout(%d) = %s, want %s", n, got, d)
		}
	}
}

func TestPolicyDecideAndForget(t *testing.T) {
	p := DefaultLoginPolicy()
	var st failState
	now := t0
	for range 4 {
		st = p.fail(st, now)
		if _, wait := p.decide(st, now); wait != 0 {
			t.Fatalf("locked after %d failures", st.Failures)
		}
	}
	st = p.fail(st, now)
	if _, wait := p.decide(st, now); wait != 30*time.Second {
		t.Fatalf("after 5 failures wait %s, want 30s", wait)
	}
	if _, wait := p.decide(st, now.Add(30*time.Second)); wait != 0 {
		t.Fatalf("still locked when the lockout ended: %s", wait)
	}
	st = p.fail(st, now.Add(31*time.Second))
	if _, wait := p.decide(st, now.Add(31*time.Second)); wait != time.Minute {
		t.Fatalf("6th failure wait %s, want 1m", wait)
	}
	// An hour after the last failure, and unlocked, the key starts again.
	later := now.Add(31*time.Second + time.Hour)
	if next, wait := p.decide(st, later); wait != 0 || next != (failState{}) {
		t.Fatalf("not forgotten: %+v %s", next, wait)
	}
}

func TestThrottleKeysAndBound(t *testing.T) {
	p := DefaultLoginPolicy()
	p.MaxTracked = 3
	th := newThrottle(p)
	for range 5 {
		th.failed(t0, "ip:a", "user:x")
	}
	if th.check(t0, "ip:b", "user:y") != 0 {
		t.Fatal("unrelated keys locked")
	}
	if th.check(t0, "ip:b", "user:x") != 30*time.Second {
		t.Fatal("a locked user is not locked from another address")
	}
	if th.check(t0, "ip:a", "user:z") != 30*time.Second {
		t.Fatal("a locked address is not locked for another user")
	}
	// The bound: new keys evict, locked keys go last.
	th.failed(t0.Add(time.Second), "ip:c")
	th.failed(t0.Add(2*time.Second), "ip:d")
	if len(th.m) > 3 {
		t.Fatalf("%d keys tracked, bound 3", len(th.m))
	}
	if th.check(t0.Add(2*time.Second), "user:x") == 0 || th.check(t0.Add(2*time.Second), "ip:a") == 0 {
		t.Fatal("a locked key was evicted before unlocked ones")
	}
	th.succeeded("ip:a", "user:x")
	if th.check(t0, "ip:a", "user:x") != 0 {
		t.Fatal("success did not clear the keys")
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.5:1234":             "ip:192.168.1.5",
		"[::ffff:192.168.1.5]:1":       "ip:192.168.1.5",
		"[2001:db8:1:2:3:4:5:6]:443":   "ip:2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:443":   "ip:2001:db8:1:2::/64",
		"[fe80::1%eth0]:1":             "ip:fe80::/64",
		"not-an-address":               "ip:not-an-address",
		"127.0.0.1:0":                  "ip:127.0.0.1",
		"[2001:db8:1:3:3:4:5:6]:44300": "ip:2001:db8:1:3::/64",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginPolicyValidate(t *testing.T) {
	if err := (LoginPolicy{}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, p := range []LoginPolicy{
		{Threshold: -1},
		{BaseLockout: time.Hour, MaxLockout: time.Minute},
		{MaxLockout: 2 * time.Hour, ForgetAfter: time.Hour},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func TestSessionStore(t *testing.T) {
	s := newSessionStore(12*time.Hour, 30*time.Minute, 2)
	id1, _ := s.create("admin", "st", "c", t0)
	if len(id1) < 43 {
		t.Fatalf("session id %q is shorter than 32 random bytes", id1)
	}
	if _, ok := s.get(id1, t0.Add(29*time.Minute)); !ok {
		t.Fatal("session gone before the idle timeout")
	}
	if _, ok := s.get(id1, t0.Add(29*time.Minute+30*time.Minute)); ok {
		t.Fatal("idle session still valid")
	}
	// Absolute lifetime even when used all the time.
	id2, _ := s.create("admin", "st", "c", t0)
	for at := t0; at.Before(t0.Add(12*time.Hour - time.Minute)); at = at.Add(20 * time.Minute) {
		if _, ok := s.get(id2, at); !ok {
			t.Fatalf("active session ended at %s", at.Sub(t0))
		}
	}
	if _, ok := s.get(id2, t0.Add(12*time.Hour)); ok {
		t.Fatal("session outlived its lifetime")
	}
	// The bound ends the oldest.
	a, _ := s.create("admin", "st", "c", t0)
	b, _ := s.create("admin", "st", "c", t0.Add(time.Second))
	c, _ := s.create("admin", "st", "c", t0.Add(2*time.Second))
	if _, ok := s.get(a, t0.Add(3*time.Second)); ok {
		t.Fatal("oldest session survived the bound")
	}
	for _, id := range []string{b, c} {
		if _, ok := s.get(id, t0.Add(3*time.Second)); !ok {
			t.Fatal("newer session lost")
		}
	}
	s.deleteOthers("new-stamp")
	if s.count(t0.Add(3*time.Second)) != 0 {
		t.Fatal("sessions of a replaced credential survived")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/":                     "/",
		"/miners/sim-1":         "/miners/sim-1",
		"/?state=mining&page=2": "/?state=mining&page=2",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"/x\r\nSet-Cookie: a=b": "/",
		"evil":                  "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
