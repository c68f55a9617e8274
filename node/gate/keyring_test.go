package gate

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

func signedBy(t *testing.T, o *signing.OrgKeys, keyID string, now time.Time, id string, seq uint64, p *pb.CommandPayload) *pb.ControlCommand {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	c := &pb.ControlCommand{CommandId: id, Actor: "user:alice", NodeId: "n1", MonotonicSeq: seq, IdempotencyKey: id, Payload: b}
	if keyID == "" {
		err = o.Sign(c, now)
	} else {
		err = o.SignWith(keyID, c, now)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reboot(ids ...string) *pb.CommandPayload {
	return &pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}}
}

func TestKeyringVerifierClassifiesRefusals(t *testing.T) {
	st, closer := memStore(t)
	defer closer()
	now := time.Unix(1_700_000_000, 0)
	org, _ := signing.NewOrgKeys("acme", now)
	other, _ := signing.NewOrgKeys("evil", now)
	if _, err := NewKeyringVerifier(st, "acme", nil, clock.NewFake(now), nil); !errors.Is(err, ErrNoVerifier) {
		t.Fatalf("no keys at all: %v", err)
	}
	kv, err := NewKeyringVerifier(st, "acme", org.PublicKeys(), clock.NewFake(now), nil)
	if err != nil {
		t.Fatal(err)
	}
	good := signedBy(t, org, "", now, "c1", 1, reboot("m-1"))
	if err := kv.Verify(good); err != nil {
		t.Fatalf("good command: %v", err)
	}
	bad := proto.Clone(good).(*pb.ControlCommand)
	bad.Signature[0] ^= 1
	if err := kv.Verify(bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if err := kv.Verify(signedBy(t, other, "", now, "c2", 2, reboot("m-1"))); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, signing.ErrWrongOrg) {
		t.Fatalf("other org: %v", err)
	}
	// A persisted keyring of another org is refused at start.
	if _, err := NewKeyringVerifier(st, "evil", other.PublicKeys(), clock.NewFake(now), nil); err == nil {
		t.Fatal("restored another org's keyring")
	}
}

// An announcement through the gate: applied, persisted with the seq mark, and restored after a restart; a
// revocation likewise; the retired and revoked keys are then refused.
func TestGateAppliesAndPersistsKeyCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	org, _ := signing.NewOrgKeys("acme", now)
	oldID, _ := org.ActiveKeyID(now)
	var kv *KeyringVerifier
	h := newHarness(t, st, nil, func(c *Config) {
		if kv, err = NewKeyringVerifier(st, "acme", org.PublicKeys(), clock.NewFake(now), nil); err != nil {
			t.Fatal(err)
		}
		c.Verifier = kv
	})
	h.clk.Set(now)
	rot, err := org.Rotate(now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ann := &pb.CommandPayload{}
	_ = proto.Unmarshal(rot.Payload, ann)
	a := h.send(signedBy(t, org, rot.SignerKeyID, now, "rotate", 1, ann))
	if a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || !strings.Contains(a.GetMessage(), rot.NewKeyID) {
		t.Fatalf("announcement: %v", a)
	}
	if h.mark() != 1 {
		t.Fatalf("mark %d", h.mark())
	}
	// Commands signed by the new key run.
	if a := h.send(signedBy(t, org, "", now, "c-new", 2, reboot("m-1"))); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("new key: %v", a)
	}
	rev, err := org.Revoke(oldID, now)
	if err != nil {
		t.Fatal(err)
	}
	rp := &pb.CommandPayload{}
	_ = proto.Unmarshal(rev.Payload, rp)
	if a := h.send(signedBy(t, org, "", now, "revoke", 3, rp)); a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("revocation: %v", a)
	}
	recs := h.audit()
	if recs[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || recs[2].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("audit %v", recs)
	}

	// Restart: the keyring comes back from the store, whatever initial keys are offered.
	h.stopGate()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := store.Open(store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	kv2, err := NewKeyringVerifier(st2, "acme", nil, clock.NewFake(now), nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*pb.CommandKey{}
	for _, k := range kv2.Snapshot() {
		byID[k.GetKeyId()] = k
	}
	if !byID[oldID].GetRevoked() || byID[rot.NewKeyID] == nil || byID[rot.NewKeyID].GetRevoked() {
		t.Fatalf("restored keyring %v", kv2.Snapshot())
	}
	oldKeyCmd := &pb.ControlCommand{CommandId: "old", NodeId: "n1", MonotonicSeq: 4, KeyId: oldID}
	if err := kv2.Verify(oldKeyCmd); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, signing.ErrRevokedKey) {
		t.Fatalf("revoked key after restart: %v", err)
	}
}

// A key command the store cannot commit changes nothing: the keyring is installed only after the commit.
func TestKeyCommandNotInstalledWhenCommitFails(t *testing.T) {
	st, closer := memStore(t)
	now := time.Unix(1_700_000_000, 0)
	org, _ := signing.NewOrgKeys("acme", now)
	var kv *KeyringVerifier
	h := newHarness(t, failingKeyStore{st}, closer, func(c *Config) {
		var err error
		if kv, err = NewKeyringVerifier(st, "acme", org.PublicKeys(), clock.NewFake(now), nil); err != nil {
			t.Fatal(err)
		}
		c.Verifier = kv
	})
	rot, _ := org.Rotate(now, time.Hour)
	ann := &pb.CommandPayload{}
	_ = proto.Unmarshal(rot.Payload, ann)
	if a := h.send(signedBy(t, org, rot.SignerKeyID, now, "rotate", 1, ann)); a.GetCode() != pb.ResultCode_RESULT_CODE_FAILED {
		t.Fatalf("ack %v", a)
	}
	if len(kv.Snapshot()) != 1 || h.mark() != 0 {
		t.Fatalf("keyring %v mark %d after a failed commit", kv.Snapshot(), h.mark())
	}
}

type failingKeyStore struct{ *store.Badger }

func (failingKeyStore) CommitKeyCommand(*pb.AuditRecord, string, []*pb.CommandKey) error {
	return errors.New("disk full")
}
