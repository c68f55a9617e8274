package lease

import (
	"fmt"
	"sync"
)

// Store persists lease states. CompareAndSet is the only write: it stores next for pairID only if the
// stored version is expectVersion (0: nothing stored yet) and next.Version is expectVersion+1, so two
// activations of one pair's LeaseActor can never both commit a decision made from the same state.
// LastHeartbeat is not persisted. Implementations must make a successful CompareAndSet durable before it
// returns (the LeaseActor replies right after).
type Store interface {
	// Load returns the stored state of pairID, or an error wrapping ErrNotFound.
	Load(pairID string) (State, error)
	// CompareAndSet stores next if the stored version is expectVersion; otherwise an error wrapping
	// ErrConflict.
	CompareAndSet(pairID string, expectVersion uint64, next State) error
}

// Memory is the in-memory Store twin for tests and simulations. Safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	states map[string]State
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{states: map[string]State{}} }

// Load implements Store.
func (m *Memory) Load(pairID string) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[pairID]
	if !ok {
		return State{}, fmt.Errorf("load lease %s: %w", pairID, ErrNotFound)
	}
	return s.Clone(), nil
}

// CompareAndSet implements Store.
func (m *Memory) CompareAndSet(pairID string, expectVersion uint64, next State) error {
	if err := casArgs(pairID, expectVersion, next); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.states[pairID].Version; cur != expectVersion {
		return fmt.Errorf("store lease %s: version is %d, expected %d: %w", pairID, cur, expectVersion, ErrConflict)
	}
	next = next.Clone()
	next.LastHeartbeat = nil
	m.states[pairID] = next
	return nil
}

func casArgs(pairID string, expectVersion uint64, next State) error {
	if pairID == "" || next.PairID != pairID {
		return fmt.Errorf("store lease %q: state is for pair %q: %w", pairID, next.PairID, ErrInvalidRequest)
	}
	if next.Version != expectVersion+1 {
		return fmt.Errorf("store lease %s: next version %d must be %d: %w", pairID, next.Version, expectVersion+1, ErrInvalidRequest)
	}
	return nil
}
