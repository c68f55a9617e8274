package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests. memberlist's Shutdown does not wait for a probe in
// flight: its probeNode goroutine returns when that probe's interval ends, and Lifeguard stretches the
// interval up to 8× while the member is degraded (it just lost its peer). So goleak is given ~6 s of
// retries instead of its default ~2 s; nothing is ignored.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(8 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

var pairKey = []byte("0123456789abcdef0123456789abcdef")

// testLogger discards logs unless HASHFLEET_TEST_LOG is set (memberlist is chatty, and conflicting-address
// errors are expected in the restart tests).
var testLogger = func() *slog.Logger {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// member is a running Gossip whose events a test can wait for.
type member struct {
	t *testing.T
	g *Gossip

	mu     sync.Mutex
	events []PeerEvent
	cond   chan struct{}
}

func cfgFor(name string, peers ...string) Config {
	c := DefaultConfig()
	c.NodeName, c.BindAddr, c.BindPort, c.Peers, c.SecretKey = name, "127.0.0.1", 0, peers, pairKey
	c.Logger = testLogger
	return c
}

func start(t *testing.T, c Config) *member {
	t.Helper()
	m := &member{t: t, cond: make(chan struct{}, 1)}
	c.Events = func(_ context.Context, ev PeerEvent) {
		m.mu.Lock()
		m.events = append(m.events, ev)
		m.mu.Unlock()
		select {
		case m.cond <- struct{}{}:
		default:
		}
	}
	g, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	m.g = g
	t.Cleanup(func() { _ = g.Halt() })
	return m
}

// waitFor waits until an event for peer in state arrives (after skip earlier events) and returns it.
func (m *member) waitFor(peer string, state PeerState, from int, timeout time.Duration) (PeerEvent, int, bool) {
	deadline := time.After(timeout)
	for {
		m.mu.Lock()
		for i := from; i < len(m.events); i++ {
			if ev := m.events[i]; ev.Name == peer && ev.State == state {
				m.mu.Unlock()
				return ev, i, true
			}
		}
		m.mu.Unlock()
		select {
		case <-m.cond:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return PeerEvent{}, 0, false
		}
	}
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

func pair(t *testing.T) (a, b *member) {
	t.Helper()
	a = start(t, cfgFor("a"))
	b = start(t, cfgFor("b", a.g.LocalAddr()))
	if _, _, ok := a.waitFor("b", PeerAlive, 0, 5*time.Second); !ok {
		t.Fatal("a never saw b alive")
	}
	if _, _, ok := b.waitFor("a", PeerAlive, 0, 5*time.Second); !ok {
		t.Fatal("b never saw a alive")
	}
	return a, b
}

func TestTwoMembersSeeEachOther(t *testing.T) {
	a, b := pair(t)
	if !a.g.PeerAlive("b") || !b.g.PeerAlive("a") || a.g.PeerAlive("nobody") {
		t.Fatal("PeerAlive disagrees with the events")
	}
	if n := len(a.g.Members()); n != 2 {
		t.Fatalf("a has %d members, want 2", n)
	}
	if err := a.g.SetMeta([]byte("holding")); err != nil {
		t.Fatal(err)
	}
	ev, _, ok := b.waitFor("a", PeerAlive, 1, 3*time.Second)
	for ok && string(ev.Meta) != "holding" {
		ev, _, ok = b.waitFor("a", PeerAlive, b.count()-1, 3*time.Second)
		if string(ev.Meta) != "holding" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("b never saw a's metadata")
	}
	if err := a.g.SetMeta(make([]byte, 600)); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("oversized metadata: %v", err)
	}
}

// TestDeadPeerDetectedWithinBound kills a member without a goodbye and measures how long the other takes to
// declare it dead, against the documented bound (1+SM)·PI .. (2+SM)·PI.
func TestDeadPeerDetectedWithinBound(t *testing.T) {
	trials := 3
	if s := os.Getenv("HASHFLEET_GOSSIP_TRIALS"); s != "" {
		trials, _ = strconv.Atoi(s)
	}
	lo, hi := DefaultConfig().DetectionBounds()
	slack := 750 * time.Millisecond // scheduling on a loaded CI machine
	var took []time.Duration
	for i := range trials {
		a, b := pair(t)
		// Kill at a random phase of a's probe cycle, after the pair settled.
		time.Sleep(time.Second + rand.N(DefaultConfig().ProbeInterval))
		from := a.count()
		killed := time.Now()
		if err := b.g.Halt(); err != nil {
			t.Fatal(err)
		}
		sus, _, okS := a.waitFor("b", PeerSuspect, from, hi+slack)
		dead, _, ok := a.waitFor("b", PeerDead, from, hi+slack)
		if !ok {
			t.Fatalf("trial %d: b not declared dead within %s", i, hi+slack)
		}
		d := dead.At.Sub(killed)
		took = append(took, d)
		if okS && !sus.At.Before(dead.At) {
			t.Fatalf("suspect at %s is not before dead at %s", sus.At, dead.At)
		}
		if !okS {
			t.Fatalf("trial %d: b was never reported suspect before dead", i)
		}
		if a.g.PeerAlive("b") {
			t.Fatal("PeerAlive(b) after b was declared dead")
		}
		_ = a.g.Halt()
	}
	slices.Sort(took)
	t.Logf("dead-peer detection over %d trials: min %s, median %s, max %s (documented %s–%s)", len(took),
		took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), lo, hi)
	if took[len(took)-1] > hi+slack {
		t.Fatalf("detection %s above the bound %s (+%s slack)", took[len(took)-1], hi, slack)
	}
}

func TestGracefulStopIsSeenAsLeft(t *testing.T) {
	a, b := pair(t)
	from := a.count()
	if err := b.g.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.waitFor("b", PeerLeft, from, 2*time.Second); !ok {
		t.Fatal("a did not see b leave")
	}
}

// TestRestartWithNewPortRejoins: b crashes, then comes back under the same name on another port with no
// configured peers, only its peers file; a must accept the new address (DeadNodeReclaimTime) and both see
// each other again. The second case restarts b before a even noticed the crash.
func TestRestartWithNewPortRejoins(t *testing.T) {
	for _, tc := range []struct {
		name       string
		waitDetect bool
	}{{"after the peer declared it dead", true}, {"before the peer noticed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "peers.json")
			a := start(t, cfgFor("a"))
			cb := cfgFor("b", a.g.LocalAddr())
			cb.PeersFile = file
			b := start(t, cb)
			if _, _, ok := a.waitFor("b", PeerAlive, 0, 5*time.Second); !ok {
				t.Fatal("no first join")
			}
			if _, _, ok := b.waitFor("a", PeerAlive, 0, 5*time.Second); !ok {
				t.Fatal("b never saw a")
			}
			oldAddr := b.g.LocalAddr()
			from := a.count()
			if err := b.g.Halt(); err != nil {
				t.Fatal(err)
			}
			if tc.waitDetect {
				if _, _, ok := a.waitFor("b", PeerDead, from, 4*time.Second); !ok {
					t.Fatal("b not declared dead")
				}
			}
			restarted := time.Now()
			cb2 := cfgFor("b") // no configured peers: only what the file remembers
			cb2.PeersFile = file
			b2 := start(t, cb2)
			if b2.g.LocalAddr() == oldAddr {
				t.Skip("the OS gave the same port back; the new-address case did not happen")
			}
			ev, _, ok := a.waitFor("b", PeerAlive, from, 15*time.Second)
			for ok && ev.Addr != b2.g.LocalAddr() {
				ev, _, ok = a.waitFor("b", PeerAlive, a.count()-1, 15*time.Second)
				time.Sleep(10 * time.Millisecond)
			}
			if !ok {
				t.Fatalf("a never accepted b at its new address %s", b2.g.LocalAddr())
			}
			t.Logf("restarted member accepted at its new address %s after %s", ev.Addr, time.Since(restarted).Round(time.Millisecond))
			if _, _, ok := b2.waitFor("a", PeerAlive, 0, 5*time.Second); !ok {
				t.Fatal("the restarted b does not see a")
			}
		})
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	a := start(t, cfgFor("a"))
	c := cfgFor("intruder", a.g.LocalAddr())
	c.SecretKey = []byte("fedcba9876543210")
	x := start(t, c)
	time.Sleep(1500 * time.Millisecond)
	if n := len(a.g.Members()); n != 1 {
		t.Fatalf("a has %d members after a join with the wrong key", n)
	}
	if n := len(x.g.Members()); n != 1 || x.count() != 0 || a.count() != 0 {
		t.Fatalf("the intruder sees %d members, %d events; a %d events", n, x.count(), a.count())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ca := cfgFor("a")
	ca.Metrics = m
	a := start(t, ca)
	cb := cfgFor("b", a.g.LocalAddr())
	cb.Metrics = NewMetrics(prometheus.NewRegistry())
	start(t, cb)
	if _, _, ok := a.waitFor("b", PeerAlive, 0, 5*time.Second); !ok {
		t.Fatal("no join")
	}
	if v := testutil.ToFloat64(m.peersAlive); v != 1 {
		t.Fatalf("peers alive %v", v)
	}
	if v := testutil.ToFloat64(m.events.WithLabelValues("alive")); v < 1 {
		t.Fatalf("alive events %v", v)
	}
}

func TestValidate(t *testing.T) {
	good := cfgFor("a")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no name":         func(c *Config) { c.NodeName = "" },
		"no key":          func(c *Config) { c.SecretKey = nil },
		"short key":       func(c *Config) { c.SecretKey = []byte("short") },
		"bad bind":        func(c *Config) { c.BindAddr = "localhost" },
		"bad peer":        func(c *Config) { c.Peers = []string{"nope"} },
		"probe timeout":   func(c *Config) { c.ProbeTimeout = c.ProbeInterval },
		"suspicion mult":  func(c *Config) { c.SuspicionMult = 0 },
		"reclaim zero":    func(c *Config) { c.DeadNodeReclaimTime = 0 },
		"meta too large":  func(c *Config) { c.Meta = make([]byte, 513) },
		"port range":      func(c *Config) { c.BindPort = 70000 },
		"rejoin interval": func(c *Config) { c.RejoinInterval = 0 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	lo, hi := DefaultConfig().DetectionBounds()
	if lo != 2*time.Second || hi != 2500*time.Millisecond {
		t.Fatalf("default detection bounds %s–%s", lo, hi)
	}
}

func TestCorruptPeersFileIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := cfgFor("a")
	c.PeersFile = file
	if _, err := Start(c); !errors.Is(err, ErrPeersFile) {
		t.Fatalf("corrupt peers file: %v", err)
	}
}
