package credentials_test

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/credentials"
	"github.com/hashfleet/hashfleet/node/identity"
)

const (
	dev   = "miner-7"
	other = "miner-8"
	pool  = "pool-password/0"
	login = sealing.PurposeMinerLogin
)

// node is a fleet node with real keys made by node/identity and an Opener over them.
type node struct {
	id  string
	ids *identity.Identity
	op  *credentials.Opener
}

func newNode(t *testing.T, id string, owned ...string) *node {
	t.Helper()
	ids, err := identity.Create(filepath.Join(t.TempDir(), id))
	if err != nil {
		t.Fatal(err)
	}
	owns := make(map[string]bool)
	for _, d := range owned {
		owns[d] = true
	}
	op, err := credentials.FromIdentity(ids, id, func(d string) bool { return owns[d] })
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, ids: ids, op: op}
}

func (n *node) pub() *ecdh.PublicKey { return n.ids.CredentialPublicKey() }

func (n *node) recipient() sealing.Recipient {
	return sealing.Recipient{NodeID: n.id, PublicKey: n.pub()}
}

// sealTo plays the cloud: it seals pt to n for (device, purpose).
func sealTo(t *testing.T, n *node, device, purpose string, pt []byte) *sealing.Envelope {
	t.Helper()
	env, err := sealing.Seal(n.pub(), n.id, device, purpose, pt)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestOpenOwnEnvelope(t *testing.T) {
	a := newNode(t, "node-a", dev)
	pw := []byte("pool-secret-1")
	env := sealTo(t, a, dev, pool, pw)
	got, err := a.op.Open(env, dev, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer credentials.Wipe(got)
	if !bytes.Equal(got, pw) {
		t.Fatalf("Open = %q", got)
	}
	if a.op.NodeID() != "node-a" || a.op.KeyID() != sealing.KeyIDOfKey(a.pub()) {
		t.Fatal("Opener identity")
	}
}

func TestOpenRefusals(t *testing.T) {
	a := newNode(t, "node-a", dev)
	b := newNode(t, "node-b", dev, other)
	pw := []byte("pool-secret-1")
	envB := sealTo(t, b, dev, pool, pw)
	envA := sealTo(t, a, dev, pool, pw)
	envAOther := sealTo(t, a, other, pool, pw)
	cases := []struct {
		name    string
		env     *sealing.Envelope
		dev, p  string
		wantErr error
	}{
		{"another node's envelope", envB, dev, pool, sealing.ErrBindingMismatch},
		{"device not owned", envAOther, other, pool, credentials.ErrNotOwner},
		{"asked for another purpose", envA, dev, login, sealing.ErrBindingMismatch},
		{"asked for another device", envA, other, pool, credentials.ErrNotOwner},
		{"nil envelope", nil, dev, pool, sealing.ErrMalformedEnvelope},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if pt, err := a.op.Open(c.env, c.dev, c.p); !errors.Is(err, c.wantErr) {
				t.Fatalf("Open = %q, %v; want %v", pt, err, c.wantErr)
			}
		})
	}
	// B's envelope relabelled as A's: HPKE refuses.
	forged := envB.Clone()
	forged.NodeID, forged.KeyID = a.id, a.op.KeyID()
	if _, err := a.op.Open(forged, dev, pool); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("relabelled envelope: %v", err)
	}
}

// Use wipes the secret after fn, whether fn succeeds, fails or panics.
func TestUseWipes(t *testing.T) {
	a := newNode(t, "node-a", dev)
	pw := []byte("miner-web-password")
	env := sealTo(t, a, dev, login, pw)
	zero := make([]byte, len(pw))

	var seen []byte
	if err := a.op.Use(env, dev, login, func(s []byte) error {
		if !bytes.Equal(s, pw) {
			t.Fatalf("fn got %q", s)
		}
		seen = s
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen, zero) {
		t.Fatalf("secret not wiped after Use: %q", seen)
	}

	boom := errors.New("miner refused")
	if err := a.op.Use(env, dev, login, func(s []byte) error { seen = s; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Use error %v", err)
	}
	if !bytes.Equal(seen, zero) {
		t.Fatal("secret not wiped after fn failed")
	}

	func() {
		defer func() { _ = recover() }()
		_ = a.op.Use(env, dev, login, func(s []byte) error { seen = s; panic("driver bug") })
	}()
	if !bytes.Equal(seen, zero) {
		t.Fatal("secret not wiped after fn panicked")
	}

	called := false
	if err := a.op.Use(env, other, login, func([]byte) error { called = true; return nil }); !errors.Is(err, credentials.ErrNotOwner) || called {
		t.Fatalf("Use on a device not owned: %v, called %v", err, called)
	}
}

func TestReseal(t *testing.T) {
	a := newNode(t, "node-a", dev)
	b := newNode(t, "node-b", dev)
	pw := []byte("pool-secret-2")
	env := sealTo(t, a, dev, pool, pw)
	out, err := a.op.Reseal(env, dev, pool, b.id, b.pub())
	if err != nil {
		t.Fatal(err)
	}
	if out.NodeID != b.id || out.DeviceID != dev || out.Purpose != pool || out.KeyID != b.op.KeyID() {
		t.Fatalf("resealed envelope %+v", out)
	}
	got, err := b.op.Open(out, dev, pool)
	if err != nil || !bytes.Equal(got, pw) {
		t.Fatalf("b opening the resealed envelope: %q, %v", got, err)
	}
	if _, err := a.op.Open(out, dev, pool); err == nil {
		t.Fatal("a opened the envelope it resealed for b")
	}
	// Resealing under another binding than the envelope's is refused (it would move the secret).
	if _, err := a.op.Reseal(env, dev, login, b.id, b.pub()); !errors.Is(err, sealing.ErrBindingMismatch) {
		t.Fatalf("reseal to another purpose: %v", err)
	}
	// B cannot reseal A's envelope.
	if _, err := b.op.Reseal(env, dev, pool, b.id, b.pub()); err == nil {
		t.Fatal("b resealed a's envelope")
	}
	// A bad target key.
	if _, err := a.op.Reseal(env, dev, pool, b.id, nil); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("reseal to a nil key: %v", err)
	}
}

func TestSealRotation(t *testing.T) {
	a := newNode(t, "node-a", dev)
	a2 := newNode(t, "node-a2", dev)
	pw := []byte("rotated-login-9")
	envs, err := a.op.SealRotation(dev, login, pw, []sealing.Recipient{a.recipient(), a2.recipient()})
	if err != nil || len(envs) != 2 {
		t.Fatalf("SealRotation: %v", err)
	}
	for i, n := range []*node{a, a2} {
		if got, err := n.op.Open(envs[i], dev, login); err != nil || !bytes.Equal(got, pw) {
			t.Fatalf("%s: %q, %v", n.id, got, err)
		}
	}
	if _, err := a.op.SealRotation(dev, login, pw, []sealing.Recipient{a2.recipient()}); !errors.Is(err, credentials.ErrNotRecipient) {
		t.Fatalf("rotation without self: %v", err)
	}
	stale := sealing.Recipient{NodeID: a.id, PublicKey: a2.pub()}
	if _, err := a.op.SealRotation(dev, login, pw, []sealing.Recipient{stale}); !errors.Is(err, credentials.ErrNotRecipient) {
		t.Fatalf("rotation to self with a wrong key: %v", err)
	}
	if _, err := a.op.SealRotation(other, login, pw, []sealing.Recipient{a.recipient()}); !errors.Is(err, credentials.ErrNotOwner) {
		t.Fatalf("rotation of a device not owned: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	a := newNode(t, "node-a")
	key, err := a.ids.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	owns := func(string) bool { return true }
	for name, cfg := range map[string]credentials.Config{
		"no node id": {Key: key, Owns: owns},
		"no key":     {NodeID: "n", Owns: owns},
		"no owns":    {NodeID: "n", Key: key},
	} {
		if _, err := credentials.New(cfg); !errors.Is(err, credentials.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The package must never persist a plaintext: it imports nothing that writes files, stores or sockets.
func TestNoIOImports(t *testing.T) {
	forbidden := []string{"os", "io/fs", "io/ioutil", "net", "net/http", "log", "log/slog",
		"github.com/dgraph-io/badger/v4", "github.com/hashfleet/hashfleet/actors/secretfile",
		"github.com/hashfleet/hashfleet/actors/badgerkv", "github.com/hashfleet/hashfleet/node/store"}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if p == bad {
					t.Errorf("%s imports %s: node/credentials must do no I/O", f, p)
				}
			}
		}
	}
}
