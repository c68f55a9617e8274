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

// PairStore persists pair declarations. A node and a device belong to at most one pair: PutPair refuses
// (ErrExists) a record naming a member or device another pair has, atomically, so of two declarations of
// one device racing (on one member or two), exactly one is stored.
type PairStore interface {
	// PutPair writes a pair record whole (ValidPairRecord); ErrExists when a member or device is another
	// pair's.
	PutPair(rec *PairRecord) error
	// DeletePair removes a pair record, freeing its members and devices; ErrNotFound when absent.
	DeletePair(id string) error
	// Pairs returns every pair record, ordered by id.
	Pairs() ([]*PairRecord, error)
}

// ValidPairRecord reports whether rec can be stored: a node-id-shaped pair id, two distinct valid member
// node ids, and device ids each valid and listed once.
func ValidPairRecord(rec *PairRecord) error {
	if rec == nil {
		return fmt.Errorf("nil pair record: %w", ErrInvalidKey)
	}
	if err := ValidNodeID(rec.ID); err != nil {
		return fmt.Errorf("pair id: %w", err)
	}
	for _, n := range rec.Members {
		if err := ValidNodeID(n); err != nil {
			return fmt.Errorf("pair %s member: %w", rec.ID, err)
		}
	}
	if rec.Members[0] == rec.Members[1] {
		return fmt.Errorf("pair %s names node %s twice: %w", rec.ID, rec.Members[0], ErrInvalidKey)
	}
	seen := make(map[string]bool, len(rec.Devices))
	for _, d := range rec.Devices {
		if err := ValidID(d); err != nil {
			return fmt.Errorf("pair %s device: %w", rec.ID, err)
		}
		if seen[d] {
			return fmt.Errorf("pair %s lists device %q twice: %w", rec.ID, d, ErrInvalidKey)
		}
		seen[d] = true
	}
	return nil
}

// PairClash names what rec shares with other, "" when nothing: a member node or a device.
func PairClash(rec, other *PairRecord) string {
	for _, n := range rec.Members {
		if n == other.Members[0] || n == other.Members[1] {
			return fmt.Sprintf("node %s is already in pair %s", n, other.ID)
		}
	}
	if len(other.Devices) == 0 {
		return ""
	}
	theirs := make(map[string]bool, len(other.Devices))
	for _, d := range other.Devices {
		theirs[d] = true
	}
	for _, d := range rec.Devices {
		if theirs[d] {
			return fmt.Sprintf("device %s is already in pair %s", d, other.ID)
		}
	}
	return ""
}

var _ PairStore = (*Badger)(nil)

// Claims: "wpclaim/n/<node>" and "wpclaim/d/<device>" hold the id of the pair that has them. Every PutPair
// reads and writes the claims of its members and devices in its transaction, so two declarations of one
// device conflict in Badger (one commits; the other retries and sees the claim).
const (
	pPairClaimNode   = "wpclaim/n/"
	pPairClaimDevice = "wpclaim/d/"
)

func pairClaims(rec *PairRecord) [][]byte {
	out := make([][]byte, 0, 2+len(rec.Devices))
	for _, n := range rec.Members {
		out = append(out, key(pPairClaimNode, n))
	}
	for _, d := range rec.Devices {
		out = append(out, key(pPairClaimDevice, d))
	}
	return out
}

// pairTxnRetries bounds the retries of a pair transaction that lost a Badger conflict.
const pairTxnRetries = 5

func (s *Badger) pairUpdate(fn func(txn *badger.Txn) error) error {
	err := s.db.Update(fn)
	for i := 0; i < pairTxnRetries && errors.Is(err, badger.ErrConflict); i++ {
		err = s.db.Update(fn)
	}
	return err
}

// PutPair implements PairStore.
func (s *Badger) PutPair(rec *PairRecord) error {
	if err := ValidPairRecord(rec); err != nil {
		return fmt.Errorf("put pair: %w", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	err = s.pairUpdate(func(txn *badger.Txn) error {
		old, err := getPair(txn, rec.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if old != nil {
			if err := dropClaims(txn, old); err != nil {
				return err
			}
		}
		for _, k := range pairClaims(rec) {
			holder, err := claimHolder(txn, k)
			if err != nil {
				return err
			}
			if holder != "" && holder != rec.ID {
				return fmt.Errorf("%s is already in pair %s: %w", k[len("wpclaim/x/"):], holder, ErrExists)
			}
		}
		// Records stored before claims existed are checked whole.
		if err := scan(txn, []byte(pWPair), func(k, v []byte) error {
			var other PairRecord
			if err := json.Unmarshal(v, &other); err != nil {
				return fmt.Errorf("pair record %s: %w", k, err)
			}
			if other.ID == rec.ID {
				return nil
			}
			if c := PairClash(rec, &other); c != "" {
				return fmt.Errorf("%s: %w", c, ErrExists)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range pairClaims(rec) {
			if err := txn.Set(k, []byte(rec.ID)); err != nil {
				return err
			}
		}
		return txn.Set(key(pWPair, rec.ID), b)
	})
	if err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	return nil
}

func getPair(txn *badger.Txn, id string) (*PairRecord, error) {
	item, err := txn.Get(key(pWPair, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("pair %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var r PairRecord
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
		return nil, fmt.Errorf("pair record %s: %w", id, err)
	}
	return &r, nil
}

// dropClaims deletes the claims rec holds (a claim another pair holds is left alone).
func dropClaims(txn *badger.Txn, rec *PairRecord) error {
	for _, k := range pairClaims(rec) {
		holder, err := claimHolder(txn, k)
		if err != nil {
			return err
		}
		if holder == rec.ID {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimHolder is the pair holding claim key k, "" when nobody does.
func claimHolder(txn *badger.Txn, k []byte) (string, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

// DeletePair implements PairStore.
func (s *Badger) DeletePair(id string) error {
	if err := ValidNodeID(id); err != nil {
		return fmt.Errorf("delete pair: %w", err)
	}
	err := s.pairUpdate(func(txn *badger.Txn) error {
		old, err := getPair(txn, id)
		if err != nil {
			return err
		}
		if err := dropClaims(txn, old); err != nil {
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
