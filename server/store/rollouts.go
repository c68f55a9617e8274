package store

import (
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Rolling firmware updates (server/rollout): one JSON record per rollout, replaced at each change of state,
// so a restarted server resumes a rollout where it was.
const pRollout = "rollout/"

// PutRollout implements rollout.Store.
func (s *Badger) PutRollout(id string, record []byte) error {
	if err := ValidNodeID(id); err != nil {
		return fmt.Errorf("put rollout: %w", err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key(pRollout, id), record) }); err != nil {
		return fmt.Errorf("put rollout %s: %w", id, err)
	}
	return nil
}

// Rollouts implements rollout.Store.
func (s *Badger) Rollouts() ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte(pRollout), func(_, v []byte) error {
			out = append(out, slices.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read rollouts: %w", err)
	}
	return out, nil
}
