package store

import (
	"fmt"

	"github.com/hashfleet/hashfleet/actors/badgerkv"
)

// OpenReadOnly opens the store for inspection (`hashfleet node status`): every write fails. It fails while a
// running node holds the store (Badger's directory lock), and when the store was not closed cleanly.
func OpenReadOnly(o Options) (*Badger, error) {
	db, err := badgerkv.Open(badgerkv.Options{Dir: o.DataDir, ReadOnly: true, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("node store (read-only): %w", err)
	}
	s := &Badger{db: db, dir: o.DataDir}
	n, err := lastAuditN(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("node store (read-only): read audit log: %w", err)
	}
	s.n.Store(n)
	return s, nil
}
