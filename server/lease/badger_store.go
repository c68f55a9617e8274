package lease

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"
)

// KeyPrefix is where lease states live in a shared Badger database: "lease/<pair id>".
const KeyPrefix = "lease/"

// Badger is the Store on a Badger database (actors/badgerkv.Open with SyncWrites, usually the server's
// own database). Every CompareAndSet is one fsynced transaction.
//
// The value is the protobuf wire encoding of this message (hand-encoded until it is added to
// messages/proto/hashfleet/v1/store.proto, with which it is byte-compatible):
//
//	message LeaseRecord {
//	  string pair_id = 1;
//	  string holder = 2;
//	  uint64 epoch = 3;
//	  int64 expires_at_unix_nano = 4;
//	  repeated string members = 5;
//	  uint64 version = 6;
//	}
type Badger struct {
	db *badger.DB
}

var _ Store = (*Badger)(nil)

// NewBadger returns a Store on db. db must be in memory or opened with SyncWrites: a grant acknowledged and
// then lost in a crash would let the epoch be issued twice.
func NewBadger(db *badger.DB) (*Badger, error) {
	if o := db.Opts(); !o.InMemory && !o.SyncWrites {
		return nil, fmt.Errorf("lease store at %s: %w", o.Dir, ErrSyncWrites)
	}
	return &Badger{db: db}, nil
}

func key(pairID string) []byte { return []byte(KeyPrefix + pairID) }

// Load implements Store.
func (b *Badger) Load(pairID string) (State, error) {
	var s State
	err := b.db.View(func(txn *badger.Txn) error {
		var err error
		s, err = get(txn, pairID)
		return err
	})
	return s, err
}

// CompareAndSet implements Store.
func (b *Badger) CompareAndSet(pairID string, expectVersion uint64, next State) error {
	if err := casArgs(pairID, expectVersion, next); err != nil {
		return err
	}
	err := b.db.Update(func(txn *badger.Txn) error {
		cur, err := get(txn, pairID)
		switch {
		case errors.Is(err, ErrNotFound):
			cur = State{}
		case err != nil:
			return err
		}
		if cur.Version != expectVersion {
			return fmt.Errorf("store lease %s: version is %d, expected %d: %w", pairID, cur.Version, expectVersion, ErrConflict)
		}
		return txn.Set(key(pairID), Encode(next))
	})
	if errors.Is(err, badger.ErrConflict) {
		return fmt.Errorf("store lease %s: %w: %w", pairID, ErrConflict, err)
	}
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("store lease %s: %w: %w", pairID, ErrStore, err)
	}
	return err
}

func get(txn *badger.Txn, pairID string) (State, error) {
	item, err := txn.Get(key(pairID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return State{}, fmt.Errorf("load lease %s: %w", pairID, ErrNotFound)
	}
	if err != nil {
		return State{}, fmt.Errorf("load lease %s: %w: %w", pairID, ErrStore, err)
	}
	var s State
	err = item.Value(func(v []byte) error {
		var derr error
		s, derr = Decode(v)
		return derr
	})
	if err != nil {
		return State{}, fmt.Errorf("load lease %s: %w", pairID, err)
	}
	return s, nil
}

// Encode returns the LeaseRecord encoding of s (LastHeartbeat is not persisted).
func Encode(s State) []byte {
	var b []byte
	b = appendString(b, 1, s.PairID)
	b = appendString(b, 2, s.Holder)
	if s.Epoch != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, s.Epoch)
	}
	if !s.ExpiresAt.IsZero() {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.ExpiresAt.UnixNano()))
	}
	for _, m := range s.Members {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, m)
	}
	if s.Version != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, s.Version)
	}
	return b
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// Decode parses a LeaseRecord. Unknown fields are skipped, as protobuf does.
func Decode(b []byte) (State, error) {
	s := State{LastHeartbeat: map[string]time.Time{}}
	members := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return State{}, fmt.Errorf("decode lease record: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return State{}, fmt.Errorf("decode lease record field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				s.PairID = v
			case 2:
				s.Holder = v
			case 5:
				if members >= len(s.Members) {
					return State{}, fmt.Errorf("decode lease record: more than %d members", len(s.Members))
				}
				s.Members[members] = v
				members++
			}
		case (num == 3 || num == 4 || num == 6) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return State{}, fmt.Errorf("decode lease record field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 3:
				s.Epoch = v
			case 4:
				s.ExpiresAt = time.Unix(0, int64(v))
			case 6:
				s.Version = v
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return State{}, fmt.Errorf("decode lease record field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return s, nil
}
