package enroll

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node/identity"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	store *MemStore
	svc   *Service
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	store := NewMemStore()
	secret, err := LoadOrCreateSecret(store)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(DefaultConfig(), secret, store, store)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{store: store, svc: svc}
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestMintAndRedeem(t *testing.T) {
	h := newHarness(t)
	code, rec, err := h.svc.Mint("org-a", "site-1", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{6}(-[0-9A-HJKMNP-TV-Z]{6}){3}$`).MatchString(code) {
		t.Fatalf("code %q", code)
	}
	// Only the HMAC is stored.
	stored, err := h.store.GetCode(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NormalizeCode(code)
	if strings.Contains(stored.ID, plain) || strings.Contains(strings.ToUpper(stored.ID), plain) || len(stored.ID) != 64 {
		t.Fatalf("stored id %q reveals the code", stored.ID)
	}

	pub, _ := newKey(t)
	// Typed sloppily: lower case, spaces instead of dashes.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	got, first, err := h.svc.Redeem(typed, pub, t0.Add(time.Minute))
	if err != nil || !first || got.OrgID != "org-a" || got.Site != "site-1" || !bytes.Equal(got.IdentityKey, pub) {
		t.Fatalf("Redeem = %+v, %v, %v", got, first, err)
	}
	// The same node polls with the same code while the operator confirms.
	if _, first, err := h.svc.Redeem(code, pub, t0.Add(2*time.Hour)); err != nil || first {
		t.Fatalf("re-presented by the same node: first=%v err=%v", first, err)
	}
	if err := h.svc.FinishCode(rec.ID, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.Redeem(code, pub, t0.Add(3*time.Hour)); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("after FinishCode: %v, want ErrCodeUsed", err)
	}
}

func TestRedeemRefusals(t *testing.T) {
	h := newHarness(t)
	pub, _ := newKey(t)
	other, _ := newKey(t)
	mint := func(ttl time.Duration) string {
		code, _, err := h.svc.Mint("org-a", "s", ttl, t0)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	reused := mint(time.Hour)
	if _, _, err := h.svc.Redeem(reused, pub, t0); err != nil {
		t.Fatal(err)
	}
	pending := mint(time.Hour)
	if _, _, err := h.svc.Redeem(pending, pub, t0); err != nil {
		t.Fatal(err)
	}
	otherServer := newHarness(t)
	foreign, _, _ := otherServer.svc.Mint("org-a", "s", time.Hour, t0)

	for _, c := range []struct {
		name string
		code string
		pub  ed25519.PublicKey
		now  time.Time
		want error
	}{
		{"wrong code", "ABCDEF-GHJKMN-PQRSTV-WXYZ01", pub, t0, ErrInvalidCode},
		{"malformed code", "not-a-code", pub, t0, ErrInvalidCode},
		{"code with a U", "UUUUUU-UUUUUU-UUUUUU-UUUUUU", pub, t0, ErrInvalidCode},
		{"huge input", strings.Repeat("A", 1<<20), pub, t0, ErrInvalidCode},
		{"code of another server", foreign, pub, t0, ErrInvalidCode},
		{"reused by another node", reused, other, t0.Add(time.Minute), ErrCodeUsed},
		{"expired code", mint(time.Hour), pub, t0.Add(time.Hour), ErrCodeExpired},
		{"pending enrollment expired", pending, pub, t0.Add(DefaultConfig().PendingTTL), ErrCodeExpired},
		{"bad identity key", mint(time.Hour), pub[:16], t0, ErrBadIdentityKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := h.svc.Redeem(c.code, c.pub, c.now); !errors.Is(err, c.want) {
				t.Fatalf("Redeem = %v, want %v", err, c.want)
			}
		})
	}
	// A failed redemption by another node does not take the code from the one that redeemed it.
	if _, first, err := h.svc.Redeem(reused, pub, t0.Add(time.Minute)); err != nil || first {
		t.Fatalf("rightful node after a refused attempt: %v", err)
	}
	if err := h.svc.FinishCode("deadbeef", t0); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("FinishCode unknown: %v", err)
	}
	if _, _, err := h.svc.Mint("", "s", time.Hour, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Mint empty org: %v", err)
	}
	if _, _, err := h.svc.Mint("o", "s", 0, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Mint zero ttl: %v", err)
	}
	if _, _, err := h.svc.Mint("o", "s", 365*24*time.Hour, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Mint huge ttl: %v", err)
	}
}

func TestRedeemRaceOneWinner(t *testing.T) {
	h := newHarness(t)
	code, _, _ := h.svc.Mint("org-a", "s", time.Hour, t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for range 32 {
		pub, _ := newKey(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, first, err := h.svc.Redeem(code, pub, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && first:
				wins++
			case errors.Is(err, ErrCodeUsed):
				used++
			default:
				t.Errorf("Redeem: first=%v err=%v", first, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || used != 31 {
		t.Fatalf("wins %d, used %d; want exactly one winner", wins, used)
	}
}

func TestNormalizeCode(t *testing.T) {
	const want = "0123456789ABCDEFGHJKMNPQ"
	for in, want := range map[string]string{
		"012345-6789AB-CDEFGH-JKMNPQ": want,
		"o12345 6789ab cdefgh jkmnpq": want,            // O read as zero, lower case, spaces
		"O1234567 89ABCDEF GHJKMNPQ":  want,            // other grouping
		"0l2345-6789AB-CDEFGH-JKMNPQ": "01" + want[2:], // l read as one
		"0I2345-6789AB-CDEFGH-JKMNPQ": "01" + want[2:], // I read as one
		"012345_6789AB-CDEFGH-JKMNPQ": "",              // an underscore is not a separator
	} {
		got, err := NormalizeCode(in)
		if want == "" {
			if !errors.Is(err, ErrInvalidCode) {
				t.Errorf("NormalizeCode(%q) = %q, %v; want ErrInvalidCode", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "012345", want + "0", "012345-6789AB-CDEFGH-JKMNP!", "012345-6789AB-CDEFGH-JKMNPU"} {
		if _, err := NormalizeCode(in); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("NormalizeCode(%q) = %v", in, err)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	key, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(key)
	if err != nil || len(raw) != 32 {
		t.Fatalf("api key %q: %d bytes, %v", key, len(raw), err)
	}
	if bytes.Contains(hash, []byte(key)) || bytes.Equal(hash, raw) {
		t.Fatal("hash reveals the key")
	}
	if err := VerifyAPIKey(key, hash); err != nil {
		t.Fatalf("VerifyAPIKey: %v", err)
	}
	key2, _, _ := NewAPIKey()
	if key2 == key {
		t.Fatal("two api keys are equal")
	}
	for name, c := range map[string]struct {
		key  string
		hash []byte
	}{
		"other key":  {key2, hash},
		"empty key":  {"", hash},
		"no hash":    {key, nil},
		"short hash": {key, hash[:16]},
		"raw hash":   {key, raw},
	} {
		if err := VerifyAPIKey(c.key, c.hash); !errors.Is(err, ErrBadAPIKey) {
			t.Errorf("%s: VerifyAPIKey = %v", name, err)
		}
	}
}

func TestChallenges(t *testing.T) {
	h := newHarness(t)
	pub, priv := newKey(t)
	_, otherPriv := newKey(t)
	sign := func(k ed25519.PrivateKey, node string, nonce []byte) []byte {
		return ed25519.Sign(k, signing.ChallengeBytes(node, nonce))
	}
	issue := func() Challenge {
		c, err := h.svc.NewChallenge("node-1", t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Nonce) != NonceSize || !c.ExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("challenge %+v", c)
		}
		return c
	}

	c := issue()
	if err := h.svc.VerifyChallenge("node-1", c.Nonce, sign(priv, "node-1", c.Nonce), pub, t0.Add(time.Second)); err != nil {
		t.Fatalf("VerifyChallenge: %v", err)
	}
	replayed := c

	cases := []struct {
		name  string
		c     Challenge
		node  string
		sig   func(Challenge) []byte
		pub   ed25519.PublicKey
		now   time.Time
		want  error
		spent bool // the challenge is consumed even though refused
	}{
		{name: "replayed challenge", c: replayed, node: "node-1", sig: func(c Challenge) []byte { return sign(priv, "node-1", c.Nonce) }, pub: pub, now: t0, want: ErrUnknownChallenge},
		{name: "never issued", c: Challenge{Nonce: bytes.Repeat([]byte{1}, 32)}, node: "node-1", sig: func(c Challenge) []byte { return sign(priv, "node-1", c.Nonce) }, pub: pub, now: t0, want: ErrUnknownChallenge},
		{name: "issued to another node", c: issue(), node: "node-2", sig: func(c Challenge) []byte { return sign(priv, "node-2", c.Nonce) }, pub: pub, now: t0, want: ErrUnknownChallenge},
		{name: "expired", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return sign(priv, "node-1", c.Nonce) }, pub: pub, now: t0.Add(time.Minute), want: ErrChallengeExpired, spent: true},
		{name: "signed by another key (stolen api key)", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return sign(otherPriv, "node-1", c.Nonce) }, pub: pub, now: t0, want: ErrBadChallengeSignature, spent: true},
		{name: "signed for another node id", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return sign(priv, "node-2", c.Nonce) }, pub: pub, now: t0, want: ErrBadChallengeSignature, spent: true},
		{name: "raw nonce signed, no context", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return ed25519.Sign(priv, c.Nonce) }, pub: pub, now: t0, want: ErrBadChallengeSignature, spent: true},
		{name: "truncated signature", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return sign(priv, "node-1", c.Nonce)[:40] }, pub: pub, now: t0, want: ErrBadChallengeSignature, spent: true},
		{name: "bad identity key", c: issue(), node: "node-1", sig: func(c Challenge) []byte { return nil }, pub: pub[:8], now: t0, want: ErrBadIdentityKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h.svc.VerifyChallenge(tc.node, tc.c.Nonce, tc.sig(tc.c), tc.pub, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyChallenge = %v, want %v", err, tc.want)
			}
			if tc.spent {
				// A correct answer after a refused one is too late: the nonce is gone.
				err := h.svc.VerifyChallenge("node-1", tc.c.Nonce, sign(priv, "node-1", tc.c.Nonce), pub, t0)
				if !errors.Is(err, ErrUnknownChallenge) {
					t.Fatalf("challenge reusable after a refused answer: %v", err)
				}
			}
		})
	}
	if _, err := h.svc.NewChallenge("", t0); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("NewChallenge empty node: %v", err)
	}
}

// The node side (node/identity) and the cloud side agree on the signed bytes.
func TestChallengeSignedByNodeIdentity(t *testing.T) {
	h := newHarness(t)
	id, err := identity.Create(filepath.Join(t.TempDir(), "id"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.svc.NewChallenge("node-7", t0)
	if err := h.svc.VerifyChallenge("node-7", c.Nonce, id.SignChallenge(c.Nonce, "node-7"), id.IdentityPublicKey(), t0); err != nil {
		t.Fatalf("identity.SignChallenge not accepted: %v", err)
	}
	// And the miner-signing key is not the identity key.
	c, _ = h.svc.NewChallenge("node-7", t0)
	sig, _ := id.MinerSigner().Sign(nil, signing.ChallengeBytes("node-7", c.Nonce), cryptoHashZero)
	if err := h.svc.VerifyChallenge("node-7", c.Nonce, sig, id.IdentityPublicKey(), t0); !errors.Is(err, ErrBadChallengeSignature) {
		t.Fatalf("challenge signed by the miner-signing key: %v", err)
	}
}

func TestSessions(t *testing.T) {
	h := newHarness(t)
	token, expires, err := h.svc.MintSession("node-1", 15*time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !expires.Equal(t0.Add(15 * time.Minute)) {
		t.Fatalf("expires %v", expires)
	}
	if node, err := h.svc.VerifySession(token, t0.Add(14*time.Minute)); err != nil || node != "node-1" {
		t.Fatalf("VerifySession = %q, %v", node, err)
	}
	// A restarted server (same secret store) verifies it; another server does not.
	secret, _ := LoadOrCreateSecret(h.store)
	restarted, _ := New(DefaultConfig(), secret, NewMemStore(), NewMemStore())
	if node, err := restarted.VerifySession(token, t0); err != nil || node != "node-1" {
		t.Fatalf("after restart: %q, %v", node, err)
	}
	other := newHarness(t)

	parts := strings.Split(token, ".")
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forge := func(mut func(b []byte) []byte) string {
		b := mut(bytes.Clone(body))
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}
	flipMAC := func() string {
		mac, _ := base64.RawURLEncoding.DecodeString(parts[2])
		mac[0] ^= 1
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac)
	}
	for _, c := range []struct {
		name  string
		token string
		svc   *Service
		now   time.Time
		want  error
	}{
		{"expired", token, h.svc, t0.Add(15 * time.Minute), ErrSessionExpired},
		{"tampered node id", forge(func(b []byte) []byte { b[len(b)-1] = '2'; return b }), h.svc, t0, ErrBadSession},
		{"tampered expiry", forge(func(b []byte) []byte { b[2]++; return b }), h.svc, t0, ErrBadSession},
		{"tampered mac", flipMAC(), h.svc, t0, ErrBadSession},
		{"other server's secret", token, other.svc, t0, ErrBadSession},
		{"empty", "", h.svc, t0, ErrBadSession},
		{"wrong prefix", "hs2." + parts[1] + "." + parts[2], h.svc, t0, ErrBadSession},
		{"extra part", token + ".x", h.svc, t0, ErrBadSession},
		{"bad base64", "hs1.!!!." + parts[2], h.svc, t0, ErrBadSession},
		{"huge", "hs1." + strings.Repeat("A", 10000) + ".A", h.svc, t0, ErrBadSession},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.svc.VerifySession(c.token, c.now); !errors.Is(err, c.want) {
				t.Fatalf("VerifySession = %v, want %v", err, c.want)
			}
		})
	}
	if _, _, err := h.svc.MintSession("node-1", 0, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero ttl: %v", err)
	}
	if _, _, err := h.svc.MintSession("node-1", 48*time.Hour, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("ttl over MaxSessionTTL: %v", err)
	}
	if _, _, err := h.svc.MintSession("", time.Minute, t0); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("empty node: %v", err)
	}
	a, _, _ := h.svc.MintSession("node-1", time.Minute, t0)
	b, _, _ := h.svc.MintSession("node-1", time.Minute, t0)
	if a == b {
		t.Fatal("two sessions minted at once share a token")
	}
}

func TestOpenSession(t *testing.T) {
	h := newHarness(t)
	pub, priv := newKey(t)
	apiKey, apiHash, _ := NewAPIKey()
	node := &pb.NodeRecord{
		NodeId: "node-1", OrgId: "org-a", IdentityPublicKey: pub, IdentityFingerprint: signing.Fingerprint(pub),
		Confirmed: true, ApiKeyHash: apiHash,
	}
	request := func(key string, signer ed25519.PrivateKey) *pb.OpenSessionRequest {
		c, err := h.svc.NewChallenge("node-1", t0)
		if err != nil {
			t.Fatal(err)
		}
		return &pb.OpenSessionRequest{NodeId: "node-1", ApiKey: key, Nonce: c.Nonce,
			Signature: ed25519.Sign(signer, signing.ChallengeBytes("node-1", c.Nonce))}
	}

	good := request(apiKey, priv)
	tok, err := h.svc.OpenSession(node, good, time.Hour, t0)
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	if id, err := h.svc.VerifySession(tok.GetToken(), t0.Add(59*time.Minute)); err != nil || id != "node-1" ||
		tok.GetExpiresAtUnixMs() != t0.Add(time.Hour).UnixMilli() {
		t.Fatalf("session from OpenSession: %q, %v", id, err)
	}

	_, thiefKey := newKey(t)
	unconfirmed := &pb.NodeRecord{NodeId: "node-1", IdentityPublicKey: pub}
	revoked := &pb.NodeRecord{NodeId: "node-1", IdentityPublicKey: pub, Confirmed: true, ApiKeyHash: apiHash, Revoked: true}
	badFP := &pb.NodeRecord{NodeId: "node-1", IdentityPublicKey: pub, Confirmed: true, ApiKeyHash: apiHash, IdentityFingerprint: "SHA256:0000"}
	for _, c := range []struct {
		name string
		node *pb.NodeRecord
		req  *pb.OpenSessionRequest
		want error
	}{
		{"stolen api key without the identity key", node, request(apiKey, thiefKey), ErrBadChallengeSignature},
		{"identity key with a wrong api key", node, request("wrong", priv), ErrBadAPIKey},
		{"replayed request", node, good, ErrUnknownChallenge},
		{"unknown node", nil, request(apiKey, priv), ErrUnknownNode},
		{"node id mismatch", &pb.NodeRecord{NodeId: "node-2"}, request(apiKey, priv), ErrNodeMismatch},
		{"not confirmed", unconfirmed, request(apiKey, priv), ErrNodeNotConfirmed},
		{"revoked", revoked, request(apiKey, priv), ErrNodeRevoked},
		{"fingerprint does not match key", badFP, request(apiKey, priv), ErrNodeMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			if tok, err := h.svc.OpenSession(c.node, c.req, time.Hour, t0); !errors.Is(err, c.want) || tok != nil {
				t.Fatalf("OpenSession = %v, %v; want %v", tok, err, c.want)
			}
		})
	}
}

func TestMemStoreChallengeBounds(t *testing.T) {
	store := NewMemStore()
	store.MaxChallengesPerNode = 2
	store.MaxChallenges = 3
	secret, _ := LoadOrCreateSecret(store)
	svc, _ := New(DefaultConfig(), secret, store, store)

	a, _ := svc.NewChallenge("n1", t0)
	b, _ := svc.NewChallenge("n1", t0)
	c, _ := svc.NewChallenge("n1", t0) // drops a
	if _, err := store.TakeChallenge("n1", a.Nonce); !errors.Is(err, ErrUnknownChallenge) {
		t.Fatalf("oldest challenge not dropped: %v", err)
	}
	if _, err := svc.NewChallenge("n2", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewChallenge("n3", t0); !errors.Is(err, ErrTooManyChallenges) {
		t.Fatalf("over the global bound: %v", err)
	}
	// Expired challenges are pruned on the next issue.
	if _, err := svc.NewChallenge("n3", t0.Add(time.Hour)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	for _, n := range [][]byte{b.Nonce, c.Nonce} {
		if _, err := store.TakeChallenge("n1", n); !errors.Is(err, ErrUnknownChallenge) {
			t.Fatalf("expired challenge not pruned: %v", err)
		}
	}
}

func TestConfigAndSecret(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.ChallengeTTL = 0
	store := NewMemStore()
	if _, err := New(bad, make([]byte, 32), store, store); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero ChallengeTTL: %v", err)
	}
	if _, err := New(DefaultConfig(), make([]byte, 16), store, store); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := New(DefaultConfig(), make([]byte, 32), nil, store); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil store: %v", err)
	}
	s1, _ := LoadOrCreateSecret(store)
	s2, _ := LoadOrCreateSecret(store)
	if len(s1) != SecretSize || !bytes.Equal(s1, s2) {
		t.Fatal("LoadOrCreateSecret does not return the persisted secret")
	}
	weak := &MemStore{secret: []byte("short")}
	if _, err := LoadOrCreateSecret(weak); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("weak stored secret: %v", err)
	}
}

// FuzzVerifySession: arbitrary tokens never panic and are never accepted unless minted by this service.
func FuzzVerifySession(f *testing.F) {
	h := newHarness(f)
	good, _, _ := h.svc.MintSession("node-1", time.Hour, t0)
	f.Add(good)
	f.Add("hs1..")
	f.Add("hs1.AQ.AA")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		node, err := h.svc.VerifySession(token, t0)
		if err == nil && (token != good || node != "node-1") {
			t.Fatalf("accepted a token never minted: %q → %q", token, node)
		}
		_, _ = NormalizeCode(token)
	})
}
