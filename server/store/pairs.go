package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Warm-standby pair declarations, one JSON record each under "wpair/<pair id>". The lease itself (holder,
// epoch, expiry) lives apart, under "lease/<pair id>" (server/lease.Badger), written by compare-and-set.

const pWPair = "wpair/"

// PairRecord is an operator-confirmed warm-standby pair: two nodes of one org and site sharing devices.
type PairRecord struct {
	ID      string    `json:"id"`
	OrgID   string    `json:"org_id"`
	Site    string    `json:"site"`
	Members [2]string `json:"members"`
	// Standby is the member that starts as the standby (never ACQUIREs).
	Standby string `json:"standby"`
	// Devices both members own (miner ids).
	Devices []string `json:"devices"`
	// KeyEnvelopes are the pair key sealed to each member (messages/sealing binary envelopes, bound to
	// (node, pair id, "pair-key")), by node id. The key itself is never stored.
	KeyEnvelopes map[string][]byte `json:"key_envelopes"`
	DeclaredBy   string            `json:"declared_by"`
	DeclaredAt   time.Time         `json:"declared_at"`
	// Transfer is the operator's pending request to hand the lease to a member (nil: none).
	Transfer *PairTransfer `json:"transfer,omitempty"`
	// Failovers are the latest holder changes, oldest first (at most MaxPairHistory).
	Failovers []PairFailover `json:"failovers,omitempty"`
}

// PairTransfer is an operator's request that the holder hand the lease over.
type PairTransfer struct {
	To          string    `json:"to"`
	By          string    `json:"by"`
	RequestedAt time.Time `json:"requested_at"`
}

// PairFailover is one change of holder.
type PairFailover struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Epoch uint64    `json:"epoch"`
	At    time.Time `json:"at"`
	// Kind is "failover" (taken over from an expired holder), "transfer", "acquire" (first grant or
	// after a release) or "release".
	Kind string `json:"kind"`
}

// MaxPairHistory bounds PairRecord.Failovers.
const MaxPairHistory = 50

// PairStore persists pair declarations.
type PairStore interface {
	// PutPair writes a pair record whole.
	PutPair(rec *PairRecord) error
	// DeletePair removes a pair record; ErrNotFound when absent.
	DeletePair(id string) error
	// Pairs returns every pair record, ordered by id.
	Pairs() ([]*PairRecord, error)
}

var _ PairStore = (*Badger)(nil)

// PutPair implements PairStore.
func (s *Badger) PutPair(rec *PairRecord) error {
	if rec == nil {
		return fmt.Errorf("put pair: nil record: %w", ErrInvalidKey)
	}
	if err := ValidNodeID(rec.ID); err != nil {
		return fmt.Errorf("put pair: %w", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key(pWPair, rec.ID), b) }); err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	return nil
}

// DeletePair implements PairStore.
func (s *Badger) DeletePair(id string) error {
	if err := ValidNodeID(id); err != nil {
		return fmt.Errorf("delete pair: %w", err)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key(pWPair, id)); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("pair %s: %w", id, ErrNotFound)
		} else if err != nil {
			return err
		}
		return txn.Delete(key(pWPair, id))
	})
	if err != nil {
		return fmt.Errorf("delete pair %s: %w", id, err)
	}
	return nil
}

// Pairs implements PairStore.
func (s *Badger) Pairs() ([]*PairRecord, error) {
	var out []*PairRecord
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte(pWPair), func(k, v []byte) error {
			var r PairRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("pair record %s: %w", k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("pairs: %w", err)
	}
	return out, nil
}
