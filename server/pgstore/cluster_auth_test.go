package pgstore_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestSecretRowsCreateOnce: members creating one secret at once (one pool each) all read back the single
// row that won, and a later create never overwrites it; compare-and-set updates refuse a stale version.
func TestSecretRowsCreateOnce(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	pools := []*pgstore.Store{open(t, dsn), open(t, dsn), open(t, dsn), open(t, dsn)}
	if _, err := pools[0].Secret("x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	var created atomic.Int32
	rows := make([]pgstore.SecretRow, len(pools))
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, c, err := p.LoadOrCreateSecret(pgstore.SecretRow{Name: "x", KEKID: "k", Public: []byte{byte(i)}, Sealed: []byte{byte(i), 1}})
			if err != nil {
				t.Error(err)
				return
			}
			if c {
				created.Add(1)
			}
			rows[i] = r
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d members created the secret, want 1", created.Load())
	}
	for _, r := range rows[1:] {
		if !bytes.Equal(r.Sealed, rows[0].Sealed) || !bytes.Equal(r.Public, rows[0].Public) || r.Version != 1 {
			t.Fatalf("members disagree: %+v vs %+v", r, rows[0])
		}
	}
	next := rows[0]
	next.Sealed = []byte("rotated")
	up, err := pools[1].UpdateSecret(next, 1)
	if err != nil || up.Version != 2 {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := pools[2].UpdateSecret(next, 1); !errors.Is(err, pgstore.ErrSecretConflict) {
		t.Fatalf("stale update: %v", err)
	}
	for name, bad := range map[string]pgstore.SecretRow{"no name": {KEKID: "k", Sealed: []byte{1}}, "no kek": {Name: "y", Sealed: []byte{1}},
		"nothing sealed": {Name: "y", KEKID: "k"}} {
		if _, _, err := pools[0].LoadOrCreateSecret(bad); !errors.Is(err, pgstore.ErrSecretInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEnrollmentStateAcrossMembers: an enrollment code minted through one member's pool is redeemed through
// another's, and a challenge issued through one is taken once through another: split mode's flow with
// consecutive calls on different members.
func TestEnrollmentStateAcrossMembers(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	secret := bytes.Repeat([]byte{7}, enroll.SecretSize)
	svcA, err := enroll.New(enroll.DefaultConfig(), secret, a, a)
	if err != nil {
		t.Fatal(err)
	}
	svcB, err := enroll.New(enroll.DefaultConfig(), secret, b, b)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	code, rec, err := svcA.Mint("default", "site-1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	got, first, err := svcB.Redeem(code, pub, now.Add(time.Second))
	if err != nil || !first || got.ID != rec.ID || got.Site != "site-1" || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Fatalf("redeem on B: %+v first=%v %v", got, first, err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, _, err := svcA.Redeem(code, other, now.Add(2*time.Second)); !errors.Is(err, enroll.ErrCodeUsed) {
		t.Fatalf("second key on A: %v", err)
	}
	if err := a.PutCode(rec); !errors.Is(err, enroll.ErrCodeExists) {
		t.Fatalf("code id reused: %v", err)
	}
	if _, err := b.GetCode("nope"); !errors.Is(err, enroll.ErrInvalidCode) {
		t.Fatalf("unknown code: %v", err)
	}
	// Challenges: issued on A, taken on B once; expired ones are dropped; a node keeps at most 8.
	c, err := svcA.NewChallenge("n1", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeChallenge("n1", c.Nonce); err != nil {
		t.Fatalf("take on B: %v", err)
	}
	if _, err := a.TakeChallenge("n1", c.Nonce); !errors.Is(err, enroll.ErrUnknownChallenge) {
		t.Fatalf("replayed nonce: %v", err)
	}
	var nonces [][]byte
	for i := range 10 {
		c, err := svcA.NewChallenge("n2", now.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, c.Nonce)
	}
	if _, err := b.TakeChallenge("n2", nonces[0]); !errors.Is(err, enroll.ErrUnknownChallenge) {
		t.Fatalf("oldest of 10 kept: %v", err)
	}
	if _, err := b.TakeChallenge("n2", nonces[9]); err != nil {
		t.Fatalf("newest of 10: %v", err)
	}
	if _, err := svcB.NewChallenge("n3", now.Add(time.Hour)); err != nil { // drops n2's expired ones
		t.Fatal(err)
	}
	if _, err := a.TakeChallenge("n2", nonces[5]); !errors.Is(err, enroll.ErrUnknownChallenge) {
		t.Fatalf("expired challenge kept: %v", err)
	}
}
