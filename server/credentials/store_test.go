package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// needles are the forms a leaked plaintext could take in a store: raw, base64 (a []byte in JSON) and hex.
func needles(pt []byte) [][]byte {
	return [][]byte{pt, []byte(base64.StdEncoding.EncodeToString(pt)), []byte(hex.EncodeToString(pt))}
}

// scanDir reads every file under dir and reports which plaintexts appear in any of them, in any form.
func scanDir(t *testing.T, dir string, plaintexts [][]byte) (found []string, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, pt := range plaintexts {
			for _, n := range needles(pt) {
				if bytes.Contains(b, n) {
					found = append(found, fmt.Sprintf("%s in %s", pt, filepath.Base(path)))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, files
}

// scanValues iterates every key and value of db (all versions) for the plaintexts.
func scanValues(t *testing.T, db *badger.DB, plaintexts [][]byte) (found []string, values int) {
	t.Helper()
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			values++
			for _, pt := range plaintexts {
				for _, n := range needles(pt) {
					if bytes.Contains(v, n) || bytes.Contains(item.Key(), n) {
						found = append(found, fmt.Sprintf("%s at %s", pt, item.Key()))
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, values
}

// The cloud's Badger store holds none of the plaintexts, after every workflow has run over it: each value
// and every file in the directory (SSTables, value log, manifest) is scanned, raw and encoded. A positive
// control proves the scan finds a plaintext that is there.
func TestBadgerStoreHoldsNoPlaintext(t *testing.T) {
	h := newBadgerHarness(t)
	a, a2, b, c := newTestNode(t, "node-a"), newTestNode(t, "node-a2"), newTestNode(t, "node-b"), newTestNode(t, "node-c")
	var secrets [][]byte
	put := func(dev, purpose string, owners ...*testNode) {
		s := secretOf(dev + "-" + purpose)
		secrets = append(secrets, s)
		h.put(dev, purpose, s, owners...)
	}
	for i := range 50 {
		dev := fmt.Sprintf("miner-%03d", i)
		owners := []*testNode{a, a2}
		if i%3 == 0 {
			owners = []*testNode{c}
		}
		put(dev, sealing.PurposeMinerLogin, owners...)
		put(dev, sealing.PoolPassword(0), owners...)
		put(dev, sealing.PoolPassword(1), owners...)
	}
	// Workflows: transfers, a revocation, rotations (new secrets sealed by nodes), a staged Put.
	for i := 1; i < 10; i++ {
		dev := fmt.Sprintf("miner-%03d", i)
		if i%3 == 0 {
			continue
		}
		req, err := h.v.Transfer(dev, a.id, keys(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.v.CompleteTransfer(dev, a.id, a.reseal(t, req)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.v.RevokeNode(c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.v.RevokeNode(a.id); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		dev := fmt.Sprintf("miner-%03d", i)
		if i%3 == 0 {
			continue
		}
		s := secretOf("rotated")
		secrets = append(secrets, s)
		if err := h.v.CompleteRotation(dev, sealing.PurposeMinerLogin, a2.id, sealFor(t, dev, sealing.PurposeMinerLogin, s, a2)); err != nil {
			t.Fatal(err)
		}
	}
	put("miner-000", sealing.PurposeMinerLogin, b) // re-entry after the sole owner's revocation

	// Flush memtables to SSTables so the scan covers every on-disk form, then close.
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	found, files := scanDir(t, h.dir, secrets)
	if len(found) > 0 {
		t.Fatalf("store directory holds plaintexts: %v", found)
	}
	if files == 0 {
		t.Fatal("scanned no files")
	}

	db, err := badgerkv.Open(badgerkv.Options{Dir: h.dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	found, values := scanValues(t, db, secrets)
	if len(found) > 0 {
		t.Fatalf("store values hold plaintexts: %v", found)
	}
	if values < 150 {
		t.Fatalf("scanned only %d values", values)
	}
	// The records are still there and still work after the reopen.
	v, err := New(NewBadgerStore(db), Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := v.Envelopes(b.id)
	if err != nil || len(envs) == 0 {
		t.Fatalf("Envelopes(b) after reopen: %d, %v", len(envs), err)
	}
	if pt, err := b.open(envs[0]); err != nil || len(pt) == 0 {
		t.Fatalf("b opening after reopen: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Positive control: a plaintext written raw is found by both scans.
	canaryDir := t.TempDir()
	cdb, err := badgerkv.Open(badgerkv.Options{Dir: canaryDir, SyncWrites: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	canary := secretOf("canary")
	if err := cdb.Update(func(txn *badger.Txn) error { return txn.Set([]byte("cred/x"), append([]byte("{"), canary...)) }); err != nil {
		t.Fatal(err)
	}
	if found, _ := scanValues(t, cdb, [][]byte{canary}); len(found) == 0 {
		t.Fatal("value scan misses a stored plaintext")
	}
	if err := cdb.Close(); err != nil {
		t.Fatal(err)
	}
	if found, _ := scanDir(t, canaryDir, [][]byte{canary}); len(found) == 0 {
		t.Fatal("file scan misses a stored plaintext")
	}
}

// The Badger store and the in-memory twin agree on every index after the same workflow.
func TestStoresAgree(t *testing.T) {
	a, a2, b := newTestNode(t, "a"), newTestNode(t, "a/2"), newTestNode(t, "b") // '/' in an id: escaped keys
	run := func(h *harness) {
		h.put("dev/1", pool, []byte("p1"), a, a2)
		h.put("dev-2", pool, []byte("p2"), a)
		h.put("dev-3", pool, []byte("p3"), b)
		req, err := h.v.Transfer("dev-2", a.id, keys(b))
		if err != nil {
			t.Fatal(err)
		}
		_ = req
		if _, err := h.v.RevokeNode(a2.id); err != nil {
			t.Fatal(err)
		}
	}
	mem, bdg := newHarness(t), newBadgerHarness(t)
	run(mem)
	run(bdg)
	view := func(h *harness) string {
		var out string
		err := h.store.View(func(tx Tx) error {
			for _, n := range []string{"a", "a/2", "b", "zzz"} {
				ds, err := tx.DevicesOf(n)
				if err != nil {
					return err
				}
				out += fmt.Sprintf("%s:%v ", n, ds)
			}
			p, err := tx.PendingDevices()
			if err != nil {
				return err
			}
			r, err := tx.RevokedNodes()
			if err != nil {
				return err
			}
			out += fmt.Sprintf("pending:%v revoked:%v", p, r)
			for _, d := range []string{"dev/1", "dev-2", "dev-3"} {
				rec, err := tx.Device(d)
				if err != nil {
					return err
				}
				out += " " + summary(rec)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	m, g := view(mem), view(bdg)
	if m != g {
		t.Fatalf("stores disagree:\n mem    %s\n badger %s", m, g)
	}
	want := "a:[dev-2 dev/1] a/2:[dev/1] b:[dev-2 dev-3] zzz:[] pending:[dev-2 dev/1] revoked:[a/2]"
	if m[:len(want)] != want {
		t.Fatalf("indexes:\n got %s\nwant %s", m, want)
	}
	// Writes inside View are refused.
	for _, h := range []*harness{mem, bdg} {
		err := h.store.View(func(tx Tx) error { return tx.MarkRevoked("x", t0) })
		if err == nil {
			t.Fatal("write inside View accepted")
		}
	}
}

// Puts racing a revocation never leave an envelope for the revoked node: the node is marked revoked in its
// own transaction before the index is read, and a Put that read "not revoked" conflicts and retries.
func TestRevocationRacingPuts(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) *harness{"mem": newHarness, "badger": newBadgerHarness} {
		t.Run(name, func(t *testing.T) {
			h := mk(t)
			a, v := newTestNode(t, "a"), newTestNode(t, "victim")
			const devices = 40
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := g; i < devices; i += 4 {
						err := h.v.Put(org, fmt.Sprintf("m-%02d", i), pool, secretOf("x"), keys(a, v))
						if err != nil && !errors.Is(err, ErrNodeRevoked) && !errors.Is(err, ErrOwnersMismatch) {
							t.Errorf("Put: %v", err)
						}
					}
				})
			}
			wg.Go(func() {
				if _, err := h.v.RevokeNode(v.id); err != nil {
					t.Errorf("RevokeNode: %v", err)
				}
			})
			wg.Wait()
			err := h.store.View(func(tx Tx) error {
				ds, err := tx.DevicesOf(a.id)
				if err != nil {
					return err
				}
				for _, d := range ds {
					rec, err := tx.Device(d)
					if err != nil {
						return err
					}
					if _, ok := findKey(rec.Owners, v.id); ok {
						t.Errorf("%s still owned by the revoked node", d)
					}
					for _, c := range rec.Credentials {
						if c.envelopeFor(v.id) != nil {
							t.Errorf("%s/%s still has an envelope for the revoked node", d, c.Purpose)
						}
						if slices.Contains(c.Readers, v.id) && !c.RevocationPending {
							t.Errorf("%s/%s was readable by the revoked node but is not pending", d, c.Purpose)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A crash between marking a node revoked and sweeping its devices is finished by ResumeRevocations.
func TestResumeRevocations(t *testing.T) {
	h := newBadgerHarness(t)
	a, a2 := newTestNode(t, "a"), newTestNode(t, "a2")
	h.put(dev1, pool, secretOf("p"), a, a2)
	// The mark alone, as if the process died right after it.
	if err := h.store.Update(func(tx Tx) error { return tx.MarkRevoked(a.id, t0) }); err != nil {
		t.Fatal(err)
	}
	if st := h.status(dev1); st.State != StateActive {
		t.Fatalf("before resume %+v", st)
	}
	reps, err := h.v.ResumeRevocations()
	if err != nil || len(reps) != 1 || !slices.Equal(reps[0].Devices, []string{dev1}) {
		t.Fatalf("ResumeRevocations: %+v, %v", reps, err)
	}
	if st := h.status(dev1); st.State != StateRevocationPending {
		t.Fatalf("after resume %+v", st)
	}
	if reps, err := h.v.ResumeRevocations(); err != nil || len(reps) != 0 {
		t.Fatalf("second resume: %+v, %v", reps, err)
	}
	if ok, err := h.v.IsRevoked(a.id); err != nil || !ok {
		t.Fatalf("IsRevoked: %v, %v", ok, err)
	}
}

func TestCorruptRecord(t *testing.T) {
	h := newBadgerHarness(t)
	if err := h.db.Update(func(txn *badger.Txn) error { return txn.Set(deviceKey(dev1), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.v.Status(dev1); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Status of a corrupt record: %v", err)
	}
}
