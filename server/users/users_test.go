package users

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/clock"
	"golang.org/x/crypto/bcrypt"
)

func testConfig(clk clock.Clock) Config {
	c := DefaultConfig()
	c.BcryptCost, c.Clock = bcrypt.MinCost, clk
	return c
}

func openTest(t *testing.T, dir string, clk clock.Clock) *Service {
	t.Helper()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := Open(db, testConfig(clk))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoginSessionAndRoles(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	s := openTest(t, t.TempDir(), clk)
	if err := s.SetBootstrapAdmin("admin", "admin-token-0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Login("admin", "not-the-token", "c"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("bootstrap admin with a wrong secret: %v", err)
	}
	if _, p, err := s.Login("admin", "admin-token-0123456789", "c"); err != nil || p.Role != Admin {
		t.Fatalf("bootstrap admin: %+v %v", p, err)
	}
	if us := s.Users(); len(us) != 1 || us[0].Name != "admin" || us[0].Role != Admin {
		t.Fatalf("users after the bootstrap sign-in: %+v", us)
	}
	if err := s.CreateUser("vera", "viewer-password-1", Viewer); err != nil {
		t.Fatal(err)
	}
	tok, p, err := s.Login("Vera ", "viewer-password-1", "10.0.0.1")
	if err != nil || p.Role != Viewer || p.Name != "user:vera" || !p.Session || p.CSRF == "" {
		t.Fatalf("login: %+v %v", p, err)
	}
	got, err := s.Session(tok)
	if err != nil || got.CSRF != p.CSRF || got.Role != Viewer {
		t.Fatalf("session: %+v %v", got, err)
	}
	// A promotion applies to the live session.
	if err := s.SetRole("vera", Operator); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(tok); got.Role != Operator {
		t.Fatalf("role after promotion %v", got.Role)
	}
	// Idle expiry on the injected clock.
	clk.Advance(59 * time.Minute)
	if _, err := s.Session(tok); err != nil {
		t.Fatalf("session within idle window: %v", err)
	}
	clk.Advance(61 * time.Minute)
	if _, err := s.Session(tok); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle session still valid: %v", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("a", 4096)} {
		if _, err := s.Session(bad); !errors.Is(err, ErrNoSession) {
			t.Errorf("session %q: %v", bad, err)
		}
	}
	tok, _, _ = s.Login("vera", "viewer-password-1", "10.0.0.1")
	s.Logout(tok)
	if _, err := s.Session(tok); !errors.Is(err, ErrNoSession) {
		t.Fatal("session valid after logout")
	}
	if err := s.DeleteUser("admin"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
	if err := s.SetRole("admin", Viewer); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
}

// TestBootstrapAdminOnlyWithoutAdmins: the admin token signs in as "admin" only while no admin user exists.
func TestBootstrapAdminOnlyWithoutAdmins(t *testing.T) {
	s := openTest(t, "", clock.NewFake(time.Unix(1_800_000_000, 0)))
	if err := s.CreateUser("ada", "ada-password-123", Admin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBootstrapAdmin("admin", "admin-token-0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Login("admin", "admin-token-0123456789", "c"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("bootstrap admin with an admin present: %v", err)
	}
	for _, bad := range [][2]string{{"Bad Name", "admin-token-0123456789"}, {"admin", "short"}} {
		if err := s.SetBootstrapAdmin(bad[0], bad[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetBootstrapAdmin(%q, %d bytes): %v", bad[0], len(bad[1]), err)
		}
	}
}

func TestBadInputRefused(t *testing.T) {
	s := openTest(t, "", clock.NewFake(time.Unix(1_800_000_000, 0)))
	for _, c := range []struct{ name, pw string }{
		{"", "long-enough-password"}, {"Bad Name", "long-enough-password"}, {"ok", "short"},
		{"ok", strings.Repeat("p", 73)}, {"a/b", "long-enough-password"}, {"<script>", "long-enough-password"},
	} {
		if err := s.CreateUser(c.name, c.pw, Operator); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateUser(%q, %d bytes): %v, want ErrInvalid", c.name, len(c.pw), err)
		}
	}
	if err := s.CreateUser("ok", "long-enough-password", Role(9)); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad role: %v", err)
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseRole(root): %v", err)
	}
	if err := s.CreateUser("ok", "long-enough-password", Operator); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser("ok", "long-enough-password", Operator); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate user: %v", err)
	}
}

func TestLoginRateLimit(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	s := openTest(t, "", clk)
	if err := s.CreateUser("olga", "operator-password", Operator); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := s.Login("olga", "wrong", "10.0.0.9"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Locked: even the right password is refused, with a retry time.
	_, _, err := s.Login("olga", "operator-password", "10.0.0.9")
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Fatalf("after 5 failures: %v", err)
	}
	// From another client too (the user name is limited), and unknown users count per client.
	if _, _, err := s.Login("olga", "operator-password", "10.0.0.10"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("other client: %v", err)
	}
	clk.Advance(time.Minute)
	// A second lockout within the window doubles.
	for i := range 5 {
		_, _, _ = s.Login("olga", "wrong", "10.0.1."+string(rune('0'+i)))
	}
	_, _, err = s.Login("olga", "operator-password", "10.0.0.13")
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Minute {
		t.Fatalf("second lockout: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, _, err := s.Login("olga", "operator-password", "10.0.0.11"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	// Spraying unknown names from one client locks that client.
	for i := range 5 {
		_, _, _ = s.Login("nobody"+string(rune('a'+i)), "x", "10.9.9.9")
	}
	if _, _, err := s.Login("someone", "x", "10.9.9.9"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("client spray: %v", err)
	}
}

func TestDecideLoginTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := loginLimits{failures: 3, window: 10 * time.Minute, lockout: time.Minute}
	var st loginState
	for i := range 2 {
		st = afterFailure(st, t0.Add(time.Duration(i)*time.Second), l)
	}
	if ok, _ := decideLogin(st, t0.Add(3*time.Second)); !ok {
		t.Fatal("locked before the limit")
	}
	// A failure after the window starts a new window.
	st = afterFailure(st, t0.Add(11*time.Minute), l)
	if ok, _ := decideLogin(st, t0.Add(11*time.Minute)); !ok || st.failures != 1 {
		t.Fatalf("window not reset: %+v", st)
	}
	for range 5 { // lockouts double up to 16×
		for range 3 {
			st = afterFailure(st, st.lockedUntil.Add(time.Second), l)
		}
	}
	if d := st.lockedUntil.Sub(st.windowStart); d > 17*time.Minute {
		t.Fatalf("lockout grew past the cap: %s", d)
	}
	if !expired(loginState{windowStart: t0}, t0.Add(11*time.Minute), l) {
		t.Fatal("old state not expired")
	}
}

func TestAPIKeysPersistHashed(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	dir := t.TempDir()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, testConfig(clk))
	if err != nil {
		t.Fatal(err)
	}
	info, secret, err := s.CreateAPIKey("ci", Viewer, "user:admin")
	if err != nil || !strings.HasPrefix(secret, KeyPrefix+info.ID+"_") {
		t.Fatalf("create: %+v %q %v", info, secret, err)
	}
	if _, _, err := s.CreateAPIKey("", Viewer, "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if err := s.CreateUser("pat", "patricia-password", Operator); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s2 := openTest(t, dir, clk)
	p, err := s2.APIKey(secret)
	if err != nil || p.Role != Viewer || p.Name != "key:"+info.ID || p.Session {
		t.Fatalf("key after reopen: %+v %v", p, err)
	}
	if _, _, err := s2.Login("pat", "patricia-password", "c"); err != nil {
		t.Fatalf("user after reopen: %v", err)
	}
	// Nothing stored contains the secret.
	raw := rawValues(t, s2)
	if strings.Contains(raw, strings.TrimPrefix(secret, KeyPrefix+info.ID+"_")) || strings.Contains(raw, "patricia-password") {
		t.Fatal("a secret is stored in clear")
	}
	for _, bad := range []string{"", "hfk_", "hfk_" + info.ID, "hfk_" + info.ID + "_", "hfk_nope_x", secret + "x", "Bearer " + secret,
		strings.Replace(secret, "_", "-", 1)} {
		if _, err := s2.APIKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("APIKey(%q): %v", bad, err)
		}
	}
	if err := s2.RevokeAPIKey(info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.APIKey(secret); !errors.Is(err, ErrBadKey) {
		t.Fatal("revoked key still works")
	}
	if ks := s2.APIKeys(); len(ks) != 1 || ks[0].Revoked.IsZero() {
		t.Fatalf("keys after revoke: %+v", ks)
	}
	if err := s2.RevokeAPIKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func rawValues(t *testing.T, s *Service) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{prefixUser, prefixKey} {
		if err := s.st.load(p, func(v []byte) error { b.Write(v); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := Config{BcryptCost: 99, SessionTTL: time.Second, LoginFailures: -1, MinPasswordLen: 3}
	if err := bad.Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
}
