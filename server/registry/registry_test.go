package registry

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/store"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	clk *clock.Fake
	st  *store.Badger
	reg *Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	secret, err := enroll.LoadOrCreateSecret(st)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := enroll.New(enroll.DefaultConfig(), secret, st, enroll.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clk: clock.NewFake(time.Unix(1_700_000_000, 0)), st: st}
	cfg := DefaultConfig()
	cfg.Clock, cfg.Keys = f.clk, func() []*pb.CommandKey { return []*pb.CommandKey{{OrgId: "default", KeyId: "default/k_1"}} }
	if f.reg, err = New(cfg, svc, st); err != nil {
		t.Fatal(err)
	}
	return f
}

type nodeKeys struct {
	id, miner ed25519.PrivateKey
	cred      *ecdh.PrivateKey
}

func newNodeKeys() nodeKeys {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	_, m, _ := ed25519.GenerateKey(rand.Reader)
	c, _ := ecdh.X25519().GenerateKey(rand.Reader)
	return nodeKeys{id: id, miner: m, cred: c}
}

func (k nodeKeys) request(code string) *pb.EnrollRequest {
	return &pb.EnrollRequest{Code: code, NodeName: "n", IdentityPublicKey: k.id.Public().(ed25519.PublicKey),
		MinerSigningPublicKey: k.miner.Public().(ed25519.PublicKey), CredentialPublicKey: k.cred.PublicKey().Bytes()}
}

func TestEnrollConfirmAPIKeyOnceAndSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code, _, err := f.reg.MintCode("site-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	k := newNodeKeys()
	resp, err := f.reg.Enroll(ctx, k.request(code))
	if err != nil || resp.GetConfirmed() || resp.GetApiKey() != "" {
		t.Fatalf("first enroll: %v %v", resp, err)
	}
	id, fp := resp.GetNodeId(), signing.Fingerprint(k.id.Public().(ed25519.PublicKey))
	if resp.GetIdentityFingerprint() != fp || id != NodeIDFor(k.id.Public().(ed25519.PublicKey)) {
		t.Fatalf("response %v", resp)
	}
	// The identity key cannot open a session before confirmation.
	if _, err := f.reg.Challenge(ctx, &pb.ChallengeRequest{NodeId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("challenge before confirmation: %v", err)
	}
	if _, err := f.reg.Confirm(id, "SHA256:0000-0000-0000-0000-0000-0000-0000-0000"); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	if _, err := f.reg.Confirm("nope", fp); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	if _, err := f.reg.Confirm(id, fp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Confirm(id, fp); !errors.Is(err, ErrAlreadyConfirmed) {
		t.Fatalf("confirm twice: %v", err)
	}
	resp, err = f.reg.Enroll(ctx, k.request(code))
	if err != nil || !resp.GetConfirmed() || resp.GetApiKey() == "" || len(resp.GetCommandKeys()) != 1 {
		t.Fatalf("poll after confirmation: %v %v", resp, err)
	}
	apiKey := resp.GetApiKey()
	if _, err := f.reg.Enroll(ctx, k.request(code)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("api key issued twice? %v", err)
	}
	rec, _ := f.st.NodeRecord(id)
	if len(rec.GetApiKeyHash()) == 0 || string(rec.GetApiKeyHash()) == apiKey {
		t.Fatal("api key not stored as a hash")
	}

	session := func(sign ed25519.PrivateKey, key string) (*pb.SessionToken, error) {
		ch, err := f.reg.Challenge(ctx, &pb.ChallengeRequest{NodeId: id})
		if err != nil {
			return nil, err
		}
		return f.reg.OpenSession(ctx, &pb.OpenSessionRequest{NodeId: id, ApiKey: key, Nonce: ch.GetNonce(),
			Signature: ed25519.Sign(sign, signing.ChallengeBytes(id, ch.GetNonce()))})
	}
	if _, err := session(newNodeKeys().id, apiKey); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("api key without the identity key: %v", err)
	}
	if _, err := session(k.id, "not-the-key"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("identity key without the api key: %v", err)
	}
	tok, err := session(k.id, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	node, exp, err := f.reg.VerifySession(ctx, tok.GetToken())
	if err != nil || node != id || !exp.Equal(f.clk.Now().Add(time.Hour)) {
		t.Fatalf("verify: %q %v %v", node, exp, err)
	}
	f.clk.Advance(time.Hour)
	if _, _, err := f.reg.VerifySession(ctx, tok.GetToken()); !errors.Is(err, enroll.ErrSessionExpired) {
		t.Fatalf("expired: %v", err)
	}
	tok, _ = session(k.id, apiKey)
	if err := f.reg.Revoke(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.reg.VerifySession(ctx, tok.GetToken()); !errors.Is(err, enroll.ErrNodeRevoked) {
		t.Fatalf("revoked node's token: %v", err)
	}
	evs, err := f.reg.SecurityEvents(0)
	if err != nil || len(evs) < 5 {
		t.Fatalf("security events %v %v", evs, err)
	}
}

func TestEnrollRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := newNodeKeys()
	if _, err := f.reg.Enroll(ctx, k.request("AAAAAA-AAAAAA-AAAAAA-AAAAAA")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unknown code: %v", err)
	}
	code, _, _ := f.reg.MintCode("", time.Minute)
	req := k.request(code)
	req.MinerSigningPublicKey = req.IdentityPublicKey
	if _, err := f.reg.Enroll(ctx, req); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("same key twice: %v", err)
	}
	if _, err := f.reg.Enroll(ctx, k.request(code)); err != nil {
		t.Fatal(err)
	}
	// The code is bound to the first identity: another node cannot use it.
	if _, err := f.reg.Enroll(ctx, newNodeKeys().request(code)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("second identity with the same code: %v", err)
	}
	// An expired code.
	code2, _, _ := f.reg.MintCode("", time.Minute)
	f.clk.Advance(2 * time.Minute)
	if _, err := f.reg.Enroll(ctx, newNodeKeys().request(code2)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("expired code: %v", err)
	}
}
