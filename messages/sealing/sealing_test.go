package sealing_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/identity"
)

const (
	devA = "miner-a"
	devB = "miner-b"
)

var secret = []byte("s3cret-pool-pass-7f1c")

func TestRoundTrip(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PurposeMinerLogin, secret)
	got, err := a.open(env, devA, sealing.PurposeMinerLogin)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, want %q", got, secret)
	}
	sealing.Wipe(got)
	if !bytes.Equal(got, make([]byte, len(secret))) {
		t.Fatalf("Wipe left %q", got)
	}
	if bytes.Contains(env.Ciphertext, secret) || bytes.Contains(env.Enc, secret) {
		t.Fatal("envelope carries the plaintext")
	}
	if env.KeyID != sealing.KeyIDOfKey(a.pub()) || env.NodeID != "node-a" || env.DeviceID != devA {
		t.Fatalf("envelope metadata %+v", env)
	}
}

// The same plaintext sealed twice gives different envelopes (a fresh ephemeral key each time): the cloud's
// store does not reveal which devices share a password.
func TestSealIsRandomised(t *testing.T) {
	a := newNode(t, "node-a")
	e1 := a.seal(t, devA, "pool-password/0", secret)
	e2 := a.seal(t, devA, "pool-password/0", secret)
	if bytes.Equal(e1.Enc, e2.Enc) || bytes.Equal(e1.Ciphertext, e2.Ciphertext) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

// Node A cannot open node B's envelope, with real keys made by node/identity, whatever binding it claims.
func TestNodeCannotOpenAnotherNodesEnvelope(t *testing.T) {
	idA, err := identity.Create(filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	idB, err := identity.Create(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	privA, err := idA.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	privB, err := idB.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	envB, err := sealing.Seal(idB.CredentialPublicKey(), "node-b", devA, sealing.PurposeMinerLogin, secret)
	if err != nil {
		t.Fatal(err)
	}
	// B opens its own.
	if pt, err := sealing.Open(privB, envB, "node-b", devA, sealing.PurposeMinerLogin); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("B opening its own envelope: %q, %v", pt, err)
	}
	// A, honestly naming B's binding: wrong key.
	if _, err := sealing.Open(privA, envB, "node-b", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrWrongKey) {
		t.Fatalf("A opening B's envelope: %v, want ErrWrongKey", err)
	}
	// A, naming itself: binding mismatch.
	if _, err := sealing.Open(privA, envB, "node-a", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrBindingMismatch) {
		t.Fatalf("A opening B's envelope as its own: %v, want ErrBindingMismatch", err)
	}
	// A rewrites the clear metadata to look like its own: HPKE still refuses.
	forged := envB.Clone()
	forged.NodeID = "node-a"
	forged.KeyID = sealing.KeyIDOfKey(idA.CredentialPublicKey())
	if _, err := sealing.Open(privA, forged, "node-a", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("A opening a relabelled copy of B's envelope: %v, want ErrDecrypt", err)
	}
	// Even with the key id left as B's and the check bypassed by claiming B's id, A's key cannot decrypt.
	forged2 := envB.Clone()
	forged2.KeyID = sealing.KeyIDOfKey(idA.CredentialPublicKey())
	if _, err := sealing.Open(privA, forged2, "node-b", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("A decrypting B's envelope: %v, want ErrDecrypt", err)
	}
}

// An envelope moved to another device, purpose or node (clear metadata rewritten to match) does not open:
// the binding is in the HPKE info, not only in the clear fields.
func TestSwappedBindingFails(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PoolPassword(0), secret)
	cases := []struct {
		name               string
		node, dev, purpose string
	}{
		{"device", "node-a", devB, sealing.PoolPassword(0)},
		{"purpose", "node-a", devA, sealing.PurposeMinerLogin},
		{"pool index", "node-a", devA, sealing.PoolPassword(1)},
		{"node id", "node-a2", devA, sealing.PoolPassword(0)},
		{"length shift", "node-a", devA + "p", "ool-password/0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Asked for the other binding with the envelope as it is: refused before decryption.
			if _, err := sealing.Open(a.priv, env, c.node, c.dev, c.purpose); !errors.Is(err, sealing.ErrBindingMismatch) {
				t.Fatalf("Open: %v, want ErrBindingMismatch", err)
			}
			// The clear fields swapped to match: HPKE refuses.
			sw := env.Clone()
			sw.NodeID, sw.DeviceID, sw.Purpose = c.node, c.dev, c.purpose
			if _, err := sealing.Open(a.priv, sw, c.node, c.dev, c.purpose); !errors.Is(err, sealing.ErrDecrypt) {
				t.Fatalf("Open swapped: %v, want ErrDecrypt", err)
			}
		})
	}
}

// Two envelopes for the same node swapped between devices (both genuinely sealed to the node) do not open
// as each other.
func TestSwappedEnvelopesBetweenDevices(t *testing.T) {
	a := newNode(t, "node-a")
	envA := a.seal(t, devA, sealing.PurposeMinerLogin, []byte("password-a"))
	envB := a.seal(t, devB, sealing.PurposeMinerLogin, []byte("password-b"))
	sw := envB.Clone()
	sw.DeviceID = devA
	if _, err := a.open(sw, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("device B's envelope presented as device A's: %v, want ErrDecrypt", err)
	}
	// Splicing A's enc with B's ciphertext does not open either.
	sp := envA.Clone()
	sp.Ciphertext = envB.Ciphertext
	if _, err := a.open(sp, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("spliced envelope: %v, want ErrDecrypt", err)
	}
}

func TestTamperedEnvelopeFails(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PurposeMinerLogin, secret)
	for i := range env.Ciphertext {
		tm := env.Clone()
		tm.Ciphertext[i] ^= 0x01
		if _, err := a.open(tm, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
			t.Fatalf("ciphertext byte %d flipped: %v, want ErrDecrypt", i, err)
		}
	}
	for i := range env.Enc {
		for _, bit := range []byte{0x01, 0x80} { // 0x80 of the last byte is the bit X25519 ignores
			tm := env.Clone()
			tm.Enc[i] ^= bit
			if _, err := a.open(tm, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
				t.Fatalf("enc byte %d bit %#x flipped: %v, want ErrDecrypt", i, bit, err)
			}
		}
	}
	tr := env.Clone()
	tr.Ciphertext = tr.Ciphertext[:len(tr.Ciphertext)-1]
	if _, err := a.open(tr, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrDecrypt) {
		t.Fatalf("truncated ciphertext: %v, want ErrDecrypt", err)
	}
	kid := env.Clone()
	kid.KeyID[0] ^= 1
	if _, err := a.open(kid, devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrWrongKey) {
		t.Fatalf("key id altered: %v, want ErrWrongKey", err)
	}
}

func TestRefusesUnsupportedEnvelopes(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PurposeMinerLogin, secret)
	mut := func(f func(*sealing.Envelope)) *sealing.Envelope { e := env.Clone(); f(e); return e }
	cases := []struct {
		name string
		env  *sealing.Envelope
		want error
	}{
		{"nil", nil, sealing.ErrMalformedEnvelope},
		{"version 2", mut(func(e *sealing.Envelope) { e.Version = 2 }), sealing.ErrUnsupportedVersion},
		{"version 0", mut(func(e *sealing.Envelope) { e.Version = 0 }), sealing.ErrUnsupportedVersion},
		{"aes-128", mut(func(e *sealing.Envelope) { e.AEAD = 0x0001 }), sealing.ErrUnsupportedSuite},
		{"chacha", mut(func(e *sealing.Envelope) { e.AEAD = 0x0003 }), sealing.ErrUnsupportedSuite},
		{"p-256 kem", mut(func(e *sealing.Envelope) { e.KEM = 0x0010 }), sealing.ErrUnsupportedSuite},
		{"sha-512 kdf", mut(func(e *sealing.Envelope) { e.KDF = 0x0003 }), sealing.ErrUnsupportedSuite},
		{"short enc", mut(func(e *sealing.Envelope) { e.Enc = e.Enc[:31] }), sealing.ErrMalformedEnvelope},
		{"tag only", mut(func(e *sealing.Envelope) { e.Ciphertext = e.Ciphertext[:16] }), sealing.ErrMalformedEnvelope},
		{"empty device", mut(func(e *sealing.Envelope) { e.DeviceID = "" }), sealing.ErrMalformedEnvelope},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := a.open(c.env, devA, sealing.PurposeMinerLogin); !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
		})
	}
}

func TestKeyChecks(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PurposeMinerLogin, secret)
	p256, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealing.Seal(p256.PublicKey(), "node-a", devA, sealing.PurposeMinerLogin, secret); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("Seal to P-256: %v, want ErrInvalidKey", err)
	}
	if _, err := sealing.Seal(nil, "node-a", devA, sealing.PurposeMinerLogin, secret); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("Seal to nil: %v, want ErrInvalidKey", err)
	}
	pp, err := hpke.NewDHKEMPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealing.Open(pp, env, "node-a", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("Open with P-256: %v, want ErrInvalidKey", err)
	}
	if _, err := sealing.Open(nil, env, "node-a", devA, sealing.PurposeMinerLogin); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("Open with nil: %v, want ErrInvalidKey", err)
	}
	if _, err := sealing.ParsePublicKey(make([]byte, 31)); !errors.Is(err, sealing.ErrInvalidKey) {
		t.Fatalf("ParsePublicKey(31 bytes): %v", err)
	}
	pub, err := sealing.ParsePublicKey(a.pub().Bytes())
	if err != nil || !pub.Equal(a.pub()) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
}

func TestSealValidatesInput(t *testing.T) {
	a := newNode(t, "node-a")
	long := strings.Repeat("x", sealing.MaxIDLen+1)
	cases := []struct {
		name               string
		node, dev, purpose string
		pt                 []byte
		want               error
	}{
		{"empty node", "", devA, "miner-login", secret, sealing.ErrInvalidBinding},
		{"empty device", "n", "", "miner-login", secret, sealing.ErrInvalidBinding},
		{"empty purpose", "n", devA, "", secret, sealing.ErrInvalidBinding},
		{"long device", "n", long, "miner-login", secret, sealing.ErrInvalidBinding},
		{"control char", "n", "dev\x00a", "miner-login", secret, sealing.ErrInvalidBinding},
		{"bad utf8", "n", "dev\xff", "miner-login", secret, sealing.ErrInvalidBinding},
		{"upper purpose", "n", devA, "Miner", secret, sealing.ErrInvalidBinding},
		{"purpose leading slash", "n", devA, "/x", secret, sealing.ErrInvalidBinding},
		{"long purpose", "n", devA, strings.Repeat("p", sealing.MaxPurposeLen+1), secret, sealing.ErrInvalidBinding},
		{"empty plaintext", "n", devA, "miner-login", nil, sealing.ErrPlaintextSize},
		{"huge plaintext", "n", devA, "miner-login", make([]byte, sealing.MaxPlaintextLen+1), sealing.ErrPlaintextSize},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := sealing.Seal(a.pub(), c.node, c.dev, c.purpose, c.pt); !errors.Is(err, c.want) {
				t.Fatalf("Seal: %v, want %v", err, c.want)
			}
		})
	}
	// The limits themselves are accepted and round-trip.
	maxID := strings.Repeat("d", sealing.MaxIDLen)
	maxP := strings.Repeat("p", sealing.MaxPurposeLen)
	maxPT := bytes.Repeat([]byte{0xa5}, sealing.MaxPlaintextLen)
	nn := newNode(t, strings.Repeat("n", sealing.MaxIDLen))
	env := nn.seal(t, maxID, maxP, maxPT)
	b, err := env.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != sealing.MaxEnvelopeLen {
		t.Fatalf("largest envelope is %d bytes, MaxEnvelopeLen %d", len(b), sealing.MaxEnvelopeLen)
	}
	back, err := sealing.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := nn.open(back, maxID, maxP); err != nil || !bytes.Equal(pt, maxPT) {
		t.Fatalf("largest envelope: %v", err)
	}
}

func TestSealAll(t *testing.T) {
	a, a2 := newNode(t, "node-a"), newNode(t, "node-a2")
	envs, err := sealing.SealAll([]sealing.Recipient{{NodeID: a.id, PublicKey: a.pub()}, {NodeID: a2.id, PublicKey: a2.pub()}},
		devA, sealing.PurposeMinerLogin, secret)
	if err != nil || len(envs) != 2 {
		t.Fatalf("SealAll: %v, %d envelopes", err, len(envs))
	}
	for i, n := range []*node{a, a2} {
		if pt, err := n.open(envs[i], devA, sealing.PurposeMinerLogin); err != nil || !bytes.Equal(pt, secret) {
			t.Fatalf("%s: %v", n.id, err)
		}
	}
	// Each pair member reads only its own envelope.
	if _, err := a.open(envs[1], devA, sealing.PurposeMinerLogin); err == nil {
		t.Fatal("a opened a2's envelope")
	}
	if _, err := sealing.SealAll([]sealing.Recipient{{NodeID: a.id, PublicKey: a.pub()}, {NodeID: a.id, PublicKey: a2.pub()}},
		devA, sealing.PurposeMinerLogin, secret); !errors.Is(err, sealing.ErrInvalidBinding) {
		t.Fatalf("duplicate recipient: %v", err)
	}
	if _, err := sealing.SealAll(nil, devA, sealing.PurposeMinerLogin, secret); !errors.Is(err, sealing.ErrInvalidBinding) {
		t.Fatalf("no recipients: %v", err)
	}
}

func TestInfoIsPrefixFree(t *testing.T) {
	if bytes.Equal(sealing.Info("ab", "c", "d"), sealing.Info("a", "bc", "d")) {
		t.Fatal("info collides across field boundaries")
	}
	info := sealing.Info("n", "d", "p")
	if !bytes.Contains(info, []byte(sealing.Context)) {
		t.Fatal("info lacks the context")
	}
}

func TestBinaryEncoding(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PoolPassword(2), secret)
	b, err := env.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != sealing.Version {
		t.Fatalf("first byte %d, want the version", b[0])
	}
	back, err := sealing.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(env) {
		t.Fatalf("binary round trip changed the envelope")
	}
	// The decoded envelope does not alias the input.
	b[len(b)-1] ^= 1
	if !back.Equal(env) {
		t.Fatal("decoded envelope aliases its input")
	}
	b[len(b)-1] ^= 1
	for n := range len(b) {
		if _, err := sealing.Parse(b[:n]); !errors.Is(err, sealing.ErrMalformedEnvelope) && !errors.Is(err, sealing.ErrUnsupportedVersion) {
			t.Fatalf("Parse of %d-byte prefix: %v", n, err)
		}
	}
	if _, err := sealing.Parse(append(bytes.Clone(b), 0)); !errors.Is(err, sealing.ErrMalformedEnvelope) {
		t.Fatalf("trailing byte: %v", err)
	}
	v2 := bytes.Clone(b)
	v2[0] = 2
	if _, err := sealing.Parse(v2); !errors.Is(err, sealing.ErrUnsupportedVersion) {
		t.Fatalf("version 2: %v", err)
	}
	if _, err := (&sealing.Envelope{}).MarshalBinary(); !errors.Is(err, sealing.ErrUnsupportedVersion) {
		t.Fatalf("marshal zero envelope: %v", err)
	}
}

func TestJSONEncoding(t *testing.T) {
	a := newNode(t, "node-a")
	env := a.seal(t, devA, sealing.PurposeMinerLogin, secret)
	j, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"v", "kem", "kdf", "aead", "node_id", "device_id", "purpose", "key_id", "enc", "ct"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, j)
		}
	}
	var back sealing.Envelope
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(env) {
		t.Fatal("JSON round trip changed the envelope")
	}
	if pt, err := a.open(&back, devA, sealing.PurposeMinerLogin); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("open after JSON: %v", err)
	}
	// In a larger document (a slice) too.
	js, err := json.Marshal([]*sealing.Envelope{env, env})
	if err != nil {
		t.Fatal(err)
	}
	var list []*sealing.Envelope
	if err := json.Unmarshal(js, &list); err != nil || len(list) != 2 || !list[1].Equal(env) {
		t.Fatalf("slice round trip: %v", err)
	}
	bad := []string{
		`{}`,
		`null`,
		strings.Replace(string(j), `"v":1`, `"v":2`, 1),
		strings.Replace(string(j), `"kem":32`, `"kem":16`, 1),
		strings.Replace(string(j), `"v":1`, `"v":1,"extra":true`, 1),
		strings.Replace(string(j), `"key_id":"`, `"key_id":"zz`, 1),
		string(j) + `{}`,
	}
	for _, s := range bad {
		var e sealing.Envelope
		if err := json.Unmarshal([]byte(s), &e); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
}

func TestPurposes(t *testing.T) {
	for _, p := range []string{sealing.PurposeMinerLogin, sealing.PoolPassword(0), sealing.PoolPassword(12)} {
		if err := sealing.ValidatePurpose(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if sealing.PoolPassword(3) != "pool-password/3" {
		t.Fatal(sealing.PoolPassword(3))
	}
}
