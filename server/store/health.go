package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// ErrClosed: the store is closed.
var ErrClosed = errors.New("store closed")

// Ping reports whether the store is open and answers a read transaction (readiness checks).
func (s *Badger) Ping() error {
	if s.db.IsClosed() {
		return ErrClosed
	}
	return s.db.View(func(*badger.Txn) error { return nil })
}
