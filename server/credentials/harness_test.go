package credentials

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const org = "org-1"

// testNode is a fleet node's credential keypair: what node/identity makes, held here so tests can play the
// node's part (open, re-seal, rotate).
type testNode struct {
	id   string
	priv hpke.PrivateKey
	key  NodeKey
}

func newTestNode(t testing.TB, id string) *testNode {
	t.Helper()
	return newTestNodeIn(t, id, org)
}

func newTestNodeIn(t testing.TB, id, orgID string) *testNode {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{id: id, priv: priv, key: NodeKey{NodeID: id, OrgID: orgID, PublicKey: k.PublicKey().Bytes()}}
}

func (n *testNode) open(env *sealing.Envelope) ([]byte, error) {
	return sealing.Open(n.priv, env, n.id, env.DeviceID, env.Purpose)
}

// reseal plays the outgoing node's part of a transfer.
func (n *testNode) reseal(t testing.TB, req ResealRequest) []*sealing.Envelope {
	t.Helper()
	var out []*sealing.Envelope
	for _, it := range req.Items {
		pt, err := sealing.Open(n.priv, it.Source, n.id, req.DeviceID, it.Purpose)
		if err != nil {
			t.Fatalf("%s re-sealing %s/%s: %v", n.id, req.DeviceID, it.Purpose, err)
		}
		pub, err := sealing.ParsePublicKey(it.To.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		env, err := sealing.Seal(pub, it.To.NodeID, req.DeviceID, it.Purpose, pt)
		sealing.Wipe(pt)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}

// sealFor plays a node rotating a secret: it seals a new one to every given owner.
func sealFor(t testing.TB, dev, purpose string, pt []byte, owners ...*testNode) []*sealing.Envelope {
	t.Helper()
	var rs []sealing.Recipient
	for _, o := range owners {
		pub, err := sealing.ParsePublicKey(o.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, sealing.Recipient{NodeID: o.id, PublicKey: pub})
	}
	envs, err := sealing.SealAll(rs, dev, purpose, pt)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func keys(ns ...*testNode) []NodeKey {
	out := make([]NodeKey, len(ns))
	for i, n := range ns {
		out[i] = n.key
	}
	return out
}

// secretOf returns a distinctive plaintext for a test: random, so a match in a scan cannot be a coincidence.
func secretOf(label string) []byte {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return []byte("pw-" + label + "-" + hex.EncodeToString(b))
}

// syncBuffer is a goroutine-safe log sink the tests scan for plaintexts.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// harness is one vault with a fake clock and a captured log.
type harness struct {
	t     *testing.T
	v     *Vault
	clk   *clock.Fake
	logs  *syncBuffer
	db    *badger.DB
	dir   string
	store Store
}

// newHarness returns a vault over the in-memory twin.
func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, NewMemStore())
}

// newBadgerHarness returns a vault over Badger in a fresh directory (synced writes, as in production).
func newBadgerHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, SyncWrites: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	h := newHarnessOn(t, NewBadgerStore(db))
	h.db, h.dir = db, dir
	return h
}

func newHarnessOn(t *testing.T, s Store) *harness {
	t.Helper()
	logs := &syncBuffer{}
	clk := clock.NewFake(t0)
	v, err := New(s, Config{Clock: clk, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, v: v, clk: clk, logs: logs, store: s}
}

func (h *harness) put(dev, purpose string, pt []byte, owners ...*testNode) {
	h.t.Helper()
	if err := h.v.Put(org, dev, purpose, pt, keys(owners...)); err != nil {
		h.t.Fatalf("Put(%s, %s): %v", dev, purpose, err)
	}
}

func (h *harness) status(dev string) Status {
	h.t.Helper()
	st, err := h.v.Status(dev)
	if err != nil {
		h.t.Fatalf("Status(%s): %v", dev, err)
	}
	return st
}

func (h *harness) credState(dev, purpose string) CredentialStatus {
	h.t.Helper()
	for _, c := range h.status(dev).Credentials {
		if c.Purpose == purpose {
			return c
		}
	}
	h.t.Fatalf("%s has no credential %s", dev, purpose)
	return CredentialStatus{}
}

// reads returns what n can open for (dev, purpose) through the vault: the plaintext, or the error.
func (h *harness) reads(n *testNode, dev, purpose string) ([]byte, error) {
	env, err := h.v.Envelope(n.id, dev, purpose)
	if err != nil {
		return nil, err
	}
	return n.open(env)
}

func (h *harness) mustRead(n *testNode, dev, purpose string, want []byte) {
	h.t.Helper()
	got, err := h.reads(n, dev, purpose)
	if err != nil {
		h.t.Fatalf("%s reading %s/%s: %v", n.id, dev, purpose, err)
	}
	if !bytes.Equal(got, want) {
		h.t.Fatalf("%s read %s/%s = %q, want %q", n.id, dev, purpose, got, want)
	}
}

func (h *harness) mustNotRead(n *testNode, dev, purpose string) {
	h.t.Helper()
	if got, err := h.reads(n, dev, purpose); err == nil {
		h.t.Fatalf("%s read %s/%s = %q; it must not", n.id, dev, purpose, got)
	}
	// Nor through the list.
	envs, _ := h.v.Envelopes(n.id)
	for _, e := range envs {
		if e.DeviceID == dev && e.Purpose == purpose {
			h.t.Fatalf("%s is still listed an envelope for %s/%s", n.id, dev, purpose)
		}
	}
}
