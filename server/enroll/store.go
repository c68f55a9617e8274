package enroll

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"
)

// CodeRecord is what the server keeps of an enrollment code: never the code itself.
type CodeRecord struct {
	// ID is hex(HMAC-SHA256(server key, code)): the store key, from which the code cannot be recovered.
	ID        string
	OrgID     string
	Site      string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RedeemedAt is set by the first successful Redeem; IdentityKey is the node identity key it bound.
	RedeemedAt  time.Time
	IdentityKey []byte
	// FinishedAt is set by FinishCode: the enrollment is complete and the code is dead.
	FinishedAt time.Time
}

func (r CodeRecord) clone() CodeRecord {
	r.IdentityKey = bytes.Clone(r.IdentityKey)
	return r
}

// CodeStore persists CodeRecords. UpdateCode must be atomic (a transaction, or compare-and-set): two
// members redeeming the same code at once must see each other, so only one wins.
type CodeStore interface {
	// PutCode stores a new record; ErrCodeExists if the id is taken.
	PutCode(rec CodeRecord) error
	// GetCode returns the record; an error wrapping ErrInvalidCode if there is none.
	GetCode(id string) (CodeRecord, error)
	// UpdateCode atomically loads the record, applies fn, and stores the result unless fn fails. It returns
	// the stored record, or fn's error (wrapped as the implementation likes, errors.Is must still work).
	UpdateCode(id string, fn func(*CodeRecord) error) (CodeRecord, error)
}

// Challenge is one outstanding session challenge.
type Challenge struct {
	NodeID    string
	Nonce     []byte
	ExpiresAt time.Time
}

// ChallengeStore holds outstanding challenges. TakeChallenge must be atomic get-and-delete, so a nonce is
// usable once even with several members.
type ChallengeStore interface {
	// PutChallenge stores c. Implementations may drop expired challenges (now is given for that) and bound
	// how many are outstanding (ErrTooManyChallenges).
	PutChallenge(c Challenge, now time.Time) error
	// TakeChallenge removes and returns the challenge for (nodeID, nonce); an error wrapping
	// ErrUnknownChallenge if there is none (never issued, already taken, or dropped).
	TakeChallenge(nodeID string, nonce []byte) (Challenge, error)
}

// SecretStore persists the server secret every member shares.
type SecretStore interface {
	// LoadOrStoreSecret returns the stored secret, or stores candidate and returns it if none is stored.
	// It must be atomic (create-if-absent) so members starting together agree on one secret.
	LoadOrStoreSecret(candidate []byte) ([]byte, error)
}

// MemStore is the in-memory twin of CodeStore, ChallengeStore and SecretStore, for tests and for a single
// process that accepts losing codes and challenges on restart. (A real server keeps the secret in its
// shared store: a secret that changes on restart invalidates every session.)
type MemStore struct {
	// MaxChallengesPerNode bounds outstanding challenges per node id; the oldest is dropped beyond it.
	// Default 8.
	MaxChallengesPerNode int
	// MaxChallenges bounds outstanding challenges overall (ErrTooManyChallenges beyond it). Default 100000.
	MaxChallenges int

	mu         sync.Mutex
	codes      map[string]CodeRecord
	challenges map[string][]Challenge // by node id, oldest first
	nChal      int
	secret     []byte
}

// NewMemStore returns an empty MemStore with default bounds.
func NewMemStore() *MemStore {
	return &MemStore{
		MaxChallengesPerNode: 8,
		MaxChallenges:        100_000,
		codes:                make(map[string]CodeRecord),
		challenges:           make(map[string][]Challenge),
	}
}

// PutCode implements CodeStore.
func (m *MemStore) PutCode(rec CodeRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codes[rec.ID]; ok {
		return fmt.Errorf("code %s: %w", shortID(rec.ID), ErrCodeExists)
	}
	m.codes[rec.ID] = rec.clone()
	return nil
}

// GetCode implements CodeStore.
func (m *MemStore) GetCode(id string) (CodeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.codes[id]
	if !ok {
		return CodeRecord{}, fmt.Errorf("code %s not found: %w", shortID(id), ErrInvalidCode)
	}
	return rec.clone(), nil
}

// UpdateCode implements CodeStore.
func (m *MemStore) UpdateCode(id string, fn func(*CodeRecord) error) (CodeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.codes[id]
	if !ok {
		return CodeRecord{}, fmt.Errorf("code %s not found: %w", shortID(id), ErrInvalidCode)
	}
	rec = rec.clone()
	if err := fn(&rec); err != nil {
		return CodeRecord{}, err
	}
	m.codes[id] = rec.clone()
	return rec, nil
}

// PutChallenge implements ChallengeStore.
func (m *MemStore) PutChallenge(c Challenge, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(now)
	if m.nChal >= m.MaxChallenges {
		return fmt.Errorf("%d outstanding: %w", m.nChal, ErrTooManyChallenges)
	}
	list := m.challenges[c.NodeID]
	if len(list) >= m.MaxChallengesPerNode {
		drop := len(list) - m.MaxChallengesPerNode + 1
		list = slices.Delete(list, 0, drop)
		m.nChal -= drop
	}
	c.Nonce = bytes.Clone(c.Nonce)
	m.challenges[c.NodeID] = append(list, c)
	m.nChal++
	return nil
}

func (m *MemStore) pruneLocked(now time.Time) {
	for node, list := range m.challenges {
		kept := list[:0]
		for _, c := range list {
			if now.Before(c.ExpiresAt) {
				kept = append(kept, c)
			}
		}
		m.nChal -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(m.challenges, node)
		} else {
			m.challenges[node] = kept
		}
	}
}

// TakeChallenge implements ChallengeStore.
func (m *MemStore) TakeChallenge(nodeID string, nonce []byte) (Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.challenges[nodeID]
	for i, c := range list {
		if bytes.Equal(c.Nonce, nonce) {
			m.challenges[nodeID] = slices.Delete(list, i, i+1)
			if len(m.challenges[nodeID]) == 0 {
				delete(m.challenges, nodeID)
			}
			m.nChal--
			return c, nil
		}
	}
	return Challenge{}, fmt.Errorf("node %q: %w", nodeID, ErrUnknownChallenge)
}

// LoadOrStoreSecret implements SecretStore.
func (m *MemStore) LoadOrStoreSecret(candidate []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.secret == nil {
		m.secret = bytes.Clone(candidate)
	}
	return bytes.Clone(m.secret), nil
}

// shortID abbreviates a code id for messages and logs.
func shortID(id string) string {
	if _, err := hex.DecodeString(id); err != nil || id == "" {
		return "?"
	}
	return id[:min(len(id), 12)]
}
