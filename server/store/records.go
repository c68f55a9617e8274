package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/enroll"
)

// Records of enrollment and security: node records, enrollment codes (as HMACs), the server secret and the
// security event log. The Badger store implements enroll.CodeStore and enroll.SecretStore; challenges are
// short-lived and stay in memory (enroll.MemStore).

const (
	pNodeRec   = "node/"
	pCode      = "ecode/"
	pSecEvent  = "sec/"
	keySecret  = "secret/enroll"
	maxSecScan = 10_000
)

var (
	_ enroll.CodeStore   = (*Badger)(nil)
	_ enroll.SecretStore = (*Badger)(nil)
)

// SentCommand implements Store.
func (s *Badger) SentCommand(node string, seq uint64) (*pb.ControlCommand, error) {
	if err := ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("sent command: %w", err)
	}
	c := &pb.ControlCommand{}
	err := s.db.View(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, sentKey(node, seq), c) })
	if errors.Is(err, badgerkv.ErrNotFound) {
		return nil, fmt.Errorf("node %s seq %d: %w", node, seq, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s seq %d: %w", node, seq, err)
	}
	return c, nil
}

// PendingDevices implements Store.
func (s *Badger) PendingDevices() ([]*pb.Device, error) {
	return scanProtos(s.db, []byte(pPending), func() *pb.Device { return &pb.Device{} })
}

// NodeAudit implements Store.
func (s *Badger) NodeAudit(node string, limit int) ([]*pb.AuditRecord, error) {
	if err := ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("node audit: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	var out []*pb.AuditRecord
	prefix := key(pNodeAudit, node, "/")
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 17)...)); it.Valid() && len(out) < limit; it.Next() {
			rec := &pb.AuditRecord{}
			if err := badgerkv.GetProto(txn, it.Item().KeyCopy(nil), rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s audit: %w", node, err)
	}
	slices.Reverse(out)
	return out, nil
}

// ---- node records ----

// PutNodeRecord creates a node record; ErrExists if the node id is taken.
func (s *Badger) PutNodeRecord(rec *pb.NodeRecord) error {
	id := rec.GetNodeId()
	if err := ValidNodeID(id); err != nil {
		return fmt.Errorf("put node record: %w", err)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key(pNodeRec, id)); err == nil {
			return fmt.Errorf("node %s: %w", id, ErrExists)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return badgerkv.SetProto(txn, key(pNodeRec, id), rec)
	})
	if err != nil {
		return fmt.Errorf("put node record %s: %w", id, err)
	}
	return nil
}

// NodeRecord returns a node record; ErrNotFound when there is none.
func (s *Badger) NodeRecord(id string) (*pb.NodeRecord, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("node record: %w", err)
	}
	rec := &pb.NodeRecord{}
	err := s.db.View(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, key(pNodeRec, id), rec) })
	if errors.Is(err, badgerkv.ErrNotFound) {
		return nil, fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("node record %s: %w", id, err)
	}
	return rec, nil
}

// NodeRecords returns every node record, ordered by node id.
func (s *Badger) NodeRecords() ([]*pb.NodeRecord, error) {
	return scanProtos(s.db, []byte(pNodeRec), func() *pb.NodeRecord { return &pb.NodeRecord{} })
}

// UpdateNodeRecord atomically loads a node record, applies fn and stores the result unless fn fails. It
// returns the stored record; ErrNotFound when there is none.
func (s *Badger) UpdateNodeRecord(id string, fn func(*pb.NodeRecord) error) (*pb.NodeRecord, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("update node record: %w", err)
	}
	rec := &pb.NodeRecord{}
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := badgerkv.GetProto(txn, key(pNodeRec, id), rec); err != nil {
			if errors.Is(err, badgerkv.ErrNotFound) {
				return fmt.Errorf("node %s: %w", id, ErrNotFound)
			}
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		return badgerkv.SetProto(txn, key(pNodeRec, id), rec)
	})
	if err != nil {
		return nil, fmt.Errorf("update node record %s: %w", id, err)
	}
	return rec, nil
}

// ---- enrollment codes (enroll.CodeStore) ----

// codeJSON is a CodeRecord on disk: the code's HMAC, never the code.
type codeJSON struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"org_id"`
	Site        string    `json:"site,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RedeemedAt  time.Time `json:"redeemed_at,omitzero"`
	IdentityKey []byte    `json:"identity_key,omitempty"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

func toCodeJSON(r enroll.CodeRecord) codeJSON {
	return codeJSON{ID: r.ID, OrgID: r.OrgID, Site: r.Site, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		RedeemedAt: r.RedeemedAt, IdentityKey: r.IdentityKey, FinishedAt: r.FinishedAt}
}

func (c codeJSON) record() enroll.CodeRecord {
	return enroll.CodeRecord{ID: c.ID, OrgID: c.OrgID, Site: c.Site, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		RedeemedAt: c.RedeemedAt, IdentityKey: c.IdentityKey, FinishedAt: c.FinishedAt}
}

func getCode(txn *badger.Txn, id string) (enroll.CodeRecord, error) {
	item, err := txn.Get(key(pCode, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return enroll.CodeRecord{}, fmt.Errorf("code not found: %w", enroll.ErrInvalidCode)
	}
	if err != nil {
		return enroll.CodeRecord{}, err
	}
	var c codeJSON
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
		return enroll.CodeRecord{}, fmt.Errorf("decode code record: %w", err)
	}
	return c.record(), nil
}

func setCode(txn *badger.Txn, r enroll.CodeRecord) error {
	b, err := json.Marshal(toCodeJSON(r))
	if err != nil {
		return err
	}
	return txn.Set(key(pCode, r.ID), b)
}

// PutCode implements enroll.CodeStore.
func (s *Badger) PutCode(rec enroll.CodeRecord) error {
	if rec.ID == "" || len(rec.ID) > MaxIDLen {
		return fmt.Errorf("put code: bad id: %w", enroll.ErrInvalidCode)
	}
	return s.db.Update(func(txn *badger.Txn) error {
		if _, err := getCode(txn, rec.ID); err == nil {
			return fmt.Errorf("put code: %w", enroll.ErrCodeExists)
		} else if !errors.Is(err, enroll.ErrInvalidCode) {
			return err
		}
		return setCode(txn, rec)
	})
}

// GetCode implements enroll.CodeStore.
func (s *Badger) GetCode(id string) (enroll.CodeRecord, error) {
	var rec enroll.CodeRecord
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = getCode(txn, id)
		return err
	})
	return rec, err
}

// UpdateCode implements enroll.CodeStore: one Badger transaction, so two redemptions racing conflict and
// only one commits (the other gets badger.ErrConflict and is retried once, seeing the first's result).
func (s *Badger) UpdateCode(id string, fn func(*enroll.CodeRecord) error) (enroll.CodeRecord, error) {
	var rec enroll.CodeRecord
	update := func() error {
		return s.db.Update(func(txn *badger.Txn) error {
			r, err := getCode(txn, id)
			if err != nil {
				return err
			}
			if err := fn(&r); err != nil {
				return err
			}
			rec = r
			return setCode(txn, r)
		})
	}
	err := update()
	if errors.Is(err, badger.ErrConflict) {
		err = update()
	}
	if err != nil {
		return enroll.CodeRecord{}, err
	}
	return rec, nil
}

// LoadOrStoreSecret implements enroll.SecretStore (create-if-absent in one transaction).
func (s *Badger) LoadOrStoreSecret(candidate []byte) ([]byte, error) {
	var out []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySecret))
		if err == nil {
			out, err = item.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		out = bytes.Clone(candidate)
		return txn.Set([]byte(keySecret), out)
	})
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	return out, nil
}

// ---- security events ----

// SecurityEvent is one refusal or decision at the trust boundary (a session refused, a fingerprint
// mismatch, a node confirmed), kept for operators.
type SecurityEvent struct {
	At     time.Time `json:"at"`
	Node   string    `json:"node,omitempty"`
	Kind   string    `json:"kind"`   // e.g. "open_session", "stream", "enroll", "confirm"
	Result string    `json:"result"` // "refused" or "accepted"
	Reason string    `json:"reason,omitempty"`
	Peer   string    `json:"peer,omitempty"`
}

// AppendSecurityEvent appends e to the security event log.
func (s *Badger) AppendSecurityEvent(e SecurityEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	k := []byte(pSecEvent)
	k = binary.BigEndian.AppendUint64(k, uint64(max(e.At.UnixMilli(), 0)))
	k = binary.BigEndian.AppendUint64(k, s.n.Add(1))
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(k, b) }); err != nil {
		return fmt.Errorf("append security event: %w", err)
	}
	return nil
}

// SecurityEvents returns the newest limit security events, oldest first.
func (s *Badger) SecurityEvents(limit int) ([]SecurityEvent, error) {
	if limit <= 0 || limit > maxSecScan {
		limit = maxSecScan
	}
	var out []SecurityEvent
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pSecEvent), Reverse: true})
		defer it.Close()
		for it.Seek(append([]byte(pSecEvent), bytes.Repeat([]byte{0xff}, 17)...)); it.Valid() && len(out) < limit; it.Next() {
			var e SecurityEvent
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("security events: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}
