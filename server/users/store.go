package users

import (
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Key prefixes in the server's store.
const (
	prefixUser = "users/u/"
	prefixKey  = "users/k/"
)

// UserRecord is a stored user. Hash is the bcrypt hash of the password; the password itself is never kept.
type UserRecord struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Hash          []byte `json:"hash"`
	CreatedUnixMs int64  `json:"created_unix_ms"`
}

// KeyRecord is a stored API key. Hash is SHA-256 of the secret part; the secret is shown once at creation.
type KeyRecord struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	Hash          []byte `json:"hash"`
	CreatedBy     string `json:"created_by"`
	CreatedUnixMs int64  `json:"created_unix_ms"`
	RevokedUnixMs int64  `json:"revoked_unix_ms,omitempty"`
	LastUsedMs    int64  `json:"-"` // memory only
}

// store persists users and keys in Badger (nil db: memory only).
type store struct{ db *badger.DB }

func (s store) put(key string, v any) error {
	if s.db == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: encode %s: %v", ErrStore, key, err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), b) }); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrStore, key, err)
	}
	return nil
}

func (s store) del(key string) error {
	if s.db == nil {
		return nil
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(key)) }); err != nil {
		return fmt.Errorf("%w: delete %s: %v", ErrStore, key, err)
	}
	return nil
}

// load reads every record under prefix into fn.
func (s store) load(prefix string, fn func(v []byte) error) error {
	if s.db == nil {
		return nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(fn); err != nil {
				return fmt.Errorf("%s: %w", it.Item().Key(), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: load %s: %v", ErrStore, prefix, err)
	}
	return nil
}
