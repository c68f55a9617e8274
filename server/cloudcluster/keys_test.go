package cloudcluster_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"google.golang.org/protobuf/proto"
)

// keySigners opens the shared secrets of org1 n times on one fresh database, each on its own store, as n
// members would.
func keySigners(t *testing.T, n int) ([]*cloudcluster.OrgSigner, *pgstore.Store) {
	t.Helper()
	dsn := testsvc.SharedPostgres(t).NewDatabase(t)
	_, kek := writeKEK(t)
	out := make([]*cloudcluster.OrgSigner, n)
	var st *pgstore.Store
	for i := range out {
		st = openStore(t, dsn)
		s, err := cloudcluster.OpenSecrets(st, kek, "org1", clock.Real())
		if err != nil {
			t.Fatal(err)
		}
		if !s.Signer.Shared() {
			t.Fatal("the signer over pgstore cannot change its keys")
		}
		out[i] = s.Signer
	}
	return out, st
}

func rowVersion(t *testing.T, st *pgstore.Store) int64 {
	t.Helper()
	r, err := st.Secret("command-keys/org1")
	if err != nil {
		t.Fatal(err)
	}
	return r.Version
}

func activeKeys(l []signing.KeyInfo) []string {
	var out []string
	for _, k := range l {
		if k.State == signing.KeyActive {
			out = append(out, k.KeyID)
		}
	}
	return out
}

// TestKeysConcurrentRotation: four members rotate the same active key at the same moment; the
// compare-and-set lets exactly one rotation land, the others answer ErrKeyConflict and change nothing,
// and every member, once it reads the row again, has the one new active key.
func TestKeysConcurrentRotation(t *testing.T) {
	const n = 4
	ss, st := keySigners(t, n)
	now := time.Now()
	first := activeKeys(ss[0].List())
	if len(first) != 1 {
		t.Fatalf("active keys at start: %v", first)
	}
	v0 := rowVersion(t, st)
	type res struct {
		rot *signing.Rotation
		err error
	}
	out := make([]res, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rot, _, err := ss[i].RotateForTest(now, time.Hour, first[0])
			out[i] = res{rot, err}
		}()
	}
	close(start)
	wg.Wait()
	var won *signing.Rotation
	for i, r := range out {
		switch {
		case r.err == nil && won == nil:
			won = r.rot
		case r.err == nil:
			t.Fatalf("two rotations landed: %s and %s", won.NewKeyID, r.rot.NewKeyID)
		case !errors.Is(r.err, cloudcluster.ErrKeyConflict):
			t.Fatalf("member %d: %v", i, r.err)
		default:
			t.Logf("member %d: %v", i, r.err)
		}
	}
	if won == nil {
		t.Fatal("no rotation landed")
	}
	if v := rowVersion(t, st); v != v0+1 {
		t.Fatalf("row version %d after one rotation from %d", v, v0)
	}
	for i, s := range ss {
		if _, err := s.Refresh(); err != nil {
			t.Fatal(err)
		}
		l := s.List()
		if len(l) != 2 || len(activeKeys(l)) != 1 || activeKeys(l)[0] != won.NewKeyID {
			t.Fatalf("member %d after the race: %v", i, l)
		}
		cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1}
		if err := s.Sign(cmd); err != nil || cmd.GetKeyId() != won.NewKeyID {
			t.Fatalf("member %d signs with %s (%v), want %s", i, cmd.GetKeyId(), err, won.NewKeyID)
		}
	}
	// A rotation from a key no longer active (a retried request that lost) changes nothing.
	if _, _, err := ss[1].RotateForTest(now, time.Hour, first[0]); !errors.Is(err, cloudcluster.ErrKeyConflict) {
		t.Fatalf("rotation from a stale key: %v", err)
	}
	if v := rowVersion(t, st); v != v0+1 {
		t.Fatal("a refused rotation changed the row")
	}
}

// TestKeysRefusals: bad overlaps, unknown keys and revoking the active key are refused and leave the row
// as it was; revoking a retiring key works, and again answers "already" without writing.
func TestKeysRefusals(t *testing.T) {
	ss, st := keySigners(t, 1)
	s := ss[0]
	now := time.Now()
	old := activeKeys(s.List())[0]
	v0 := rowVersion(t, st)
	for _, o := range []time.Duration{0, -time.Hour, cloudcluster.MaxKeyOverlap + time.Second} {
		if _, _, err := s.RotateForTest(now, o, ""); !errors.Is(err, cloudcluster.ErrInvalid) {
			t.Errorf("overlap %s: %v", o, err)
		}
	}
	if _, _, _, err := s.RevokeForTest(now, "org1/k_0000000000000000"); !errors.Is(err, cloudcluster.ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	if _, _, _, err := s.RevokeForTest(now, old); !errors.Is(err, cloudcluster.ErrKeyConflict) {
		t.Errorf("the only (active) key: %v", err)
	}
	if v := rowVersion(t, st); v != v0 {
		t.Fatalf("refused requests changed the row: version %d, was %d", v, v0)
	}
	rot, v1, err := s.RotateForTest(now, time.Hour, "")
	if err != nil || v1 != v0+1 {
		t.Fatalf("rotate: %v (version %d)", err, v1)
	}
	if _, _, _, err := s.RevokeForTest(now, rot.NewKeyID); !errors.Is(err, cloudcluster.ErrKeyConflict) {
		t.Errorf("revoking the new active key: %v", err)
	}
	rev, already, v2, err := s.RevokeForTest(now, old)
	if err != nil || already || v2 != v1+1 || rev.KeyID != old {
		t.Fatalf("revoke the retiring key: %v already=%v version %d", err, already, v2)
	}
	if _, already, v3, err := s.RevokeForTest(now, old); err != nil || !already || v3 != v2 {
		t.Fatalf("revoke again: %v already=%v version %d", err, already, v3)
	}
	if v := rowVersion(t, st); v != v2 {
		t.Fatalf("row version %d, want %d", v, v2)
	}
}

// TestKeyCommandSigning: a member that has not read the rotation yet still signs its announcement with the
// key it retires (reading the row when it does not know the new key), even after that key was revoked; an
// announcement of a key outside the set, or with another retirement, and a revocation the set has not made
// are never signed.
func TestKeyCommandSigning(t *testing.T) {
	ss, _ := keySigners(t, 2)
	a, b := ss[0], ss[1]
	now := time.Now()
	old := activeKeys(a.List())[0]
	oldPub := pubOf(t, a, old)
	rot, _, err := a.RotateForTest(now, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	rev, _, _, err := a.RevokeForTest(now, old)
	if err != nil {
		t.Fatal(err)
	}
	ann := &pb.ControlCommand{CommandId: "keys-rotate", NodeId: "n1", MonotonicSeq: 7, Payload: rot.Payload}
	if err := cloudcluster.SignKeyCommandForTest(b, ann); err != nil {
		t.Fatal(err)
	}
	if ann.GetKeyId() != old || signing.Verify(oldPub, ann) != nil {
		t.Fatalf("announcement signed with %s, want the retired %s", ann.GetKeyId(), old)
	}
	// b has read the row: it signs other commands with the new key.
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 8}
	if err := b.Sign(cmd); err != nil || cmd.GetKeyId() != rot.NewKeyID {
		t.Fatalf("b signs with %s (%v)", cmd.GetKeyId(), err)
	}
	rc := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 9, Payload: rev.Payload}
	if err := cloudcluster.SignKeyCommandForTest(b, rc); err != nil || rc.GetKeyId() != rot.NewKeyID {
		t.Fatalf("revocation signed with %s (%v)", rc.GetKeyId(), err)
	}

	// Hostile key commands.
	evil, _ := signing.NewOrgKeys("org1", now)
	evilRot, err := evil.Rotate(now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tampered := proto.Clone(rot.Announcement).(*pb.KeyAnnouncement)
	tampered.RetireAtUnixMs += 3600_000
	revActive := &pb.KeyRevocation{OrgId: "org1", KeyId: rot.NewKeyID}
	for name, p := range map[string]*pb.CommandPayload{
		"announcement of a foreign key":  {KeyAnnouncement: evilRot.Announcement},
		"announcement, later retirement": {KeyAnnouncement: tampered},
		"announcement retiring itself": {KeyAnnouncement: &pb.KeyAnnouncement{Key: rot.Announcement.GetKey(),
			RetireKeyId: rot.NewKeyID, RetireAtUnixMs: 1}},
		"announcement without a key":   {KeyAnnouncement: &pb.KeyAnnouncement{RetireKeyId: old}},
		"revocation of the active key": {KeyRevocation: revActive},
		"revocation of another org":    {KeyRevocation: &pb.KeyRevocation{OrgId: "org2", KeyId: old}},
	} {
		raw, _ := proto.Marshal(p)
		c := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 10, Payload: raw}
		if err := cloudcluster.SignKeyCommandForTest(b, c); err == nil {
			t.Errorf("%s: signed with %s", name, c.GetKeyId())
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func pubOf(t *testing.T, s *cloudcluster.OrgSigner, id string) ed25519.PublicKey {
	t.Helper()
	for _, k := range s.Keys() {
		if k.GetKeyId() == id {
			return k.GetPublicKey()
		}
	}
	t.Fatalf("no key %s", id)
	return nil
}

// TestKeyWatcherReloads: a member's watcher picks up a rotation made on another member at its next tick of
// business time (fake clock), not before.
func TestKeyWatcherReloads(t *testing.T) {
	ss, _ := keySigners(t, 2)
	a, b := ss[0], ss[1]
	clk := clock.NewFake(time.Now())
	sys := actors.NewSystem(quiet)
	defer sys.Shutdown()
	pid := sys.Root.Spawn(cloudcluster.KeyWatcherProps(b, clk, 2*time.Second, quiet))
	defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
	actortest.WaitFor(t, 5*time.Second, "the first read", func() bool { return b.Version() > 0 })
	rot, v, err := a.RotateForTest(clk.Now(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if b.Version() == v {
		t.Fatal("b read the row before its tick")
	}
	actortest.WaitFor(t, 5*time.Second, "the watcher's timer", func() bool { return clk.Pending() > 0 })
	clk.Advance(2 * time.Second)
	actortest.WaitFor(t, 5*time.Second, "b to pick up the rotation", func() bool { return b.Version() == v })
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1}
	if err := b.Sign(cmd); err != nil || cmd.GetKeyId() != rot.NewKeyID {
		t.Fatalf("b signs with %s (%v), want %s", cmd.GetKeyId(), err, rot.NewKeyID)
	}
}

// TestKeysStoredAnnouncements: each rotation's announcement is kept with the keys (the latest 16), so it
// can be queued again; the org's first key has none, and a key outside the set is unknown.
func TestKeysStoredAnnouncements(t *testing.T) {
	ss, _ := keySigners(t, 2)
	a, b := ss[0], ss[1]
	first := activeKeys(a.List())[0]
	var rots []*signing.Rotation
	now := time.Now()
	for i := range 20 {
		rot, _, err := a.RotateForTest(now.Add(time.Duration(i)*time.Millisecond), time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		rots = append(rots, rot)
	}
	if p, err := b.AnnouncementForTest(rots[19].NewKeyID); err != nil || !bytes.Equal(p, rots[19].Payload) {
		t.Fatalf("latest announcement on another member: %v", err)
	}
	if p, err := b.AnnouncementForTest(rots[4].NewKeyID); err != nil || !bytes.Equal(p, rots[4].Payload) {
		t.Fatalf("16th latest announcement: %v", err)
	}
	for _, id := range []string{rots[3].NewKeyID, first} {
		if _, err := b.AnnouncementForTest(id); !errors.Is(err, cloudcluster.ErrNotFound) {
			t.Errorf("announcement of %s: %v", id, err)
		}
	}
	if _, err := b.AnnouncementForTest("org1/k_0000000000000000"); !errors.Is(err, cloudcluster.ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	// Every stored announcement still signs (with the key it retired) on a member that reads it.
	c := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1, Payload: rots[4].Payload}
	if err := cloudcluster.SignKeyCommandForTest(b, c); err != nil || c.GetKeyId() != rots[4].SignerKeyID {
		t.Fatalf("sign a stored announcement: %s %v", c.GetKeyId(), err)
	}
}
