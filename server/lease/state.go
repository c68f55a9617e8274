package lease

import (
	"maps"
	"slices"
	"time"
)

// State is one pair's lease as the cloud knows it.
type State struct {
	// PairID names the pair.
	PairID string
	// Holder is the node that may write, or "" when nobody holds the lease (never granted, or released).
	Holder string
	// Epoch is the fencing token: the highest epoch ever issued for this pair. It is kept after RELEASE so
	// that the next grant is Epoch+1 and no epoch is ever issued twice. 0: never granted.
	Epoch uint64
	// ExpiresAt is when the holder's lease ends, on the cloud's clock. Zero when nobody holds it.
	ExpiresAt time.Time
	// Members are the pair's two nodes (operator-confirmed).
	Members [2]string
	// LastHeartbeat is when the cloud last heard each member (a lease request or a gateway heartbeat). It is
	// not persisted: a newly activated LeaseActor counts every member as heard at activation, which only
	// delays a promotion, never hastens one.
	LastHeartbeat map[string]time.Time
	// Version is the store revision, bumped by Decide on every durable change (holder, epoch, expiry,
	// members). Store.CompareAndSet is keyed by it. 0: never stored.
	Version uint64
}

// NewState returns the state of a declared pair nobody has held yet.
func NewState(pairID string, members [2]string) State {
	return State{PairID: pairID, Members: members, LastHeartbeat: map[string]time.Time{}}
}

// Clone returns a deep copy.
func (s State) Clone() State {
	s.LastHeartbeat = maps.Clone(s.LastHeartbeat)
	if s.LastHeartbeat == nil {
		s.LastHeartbeat = map[string]time.Time{}
	}
	return s
}

// IsMember reports whether node is one of the pair's members.
func (s State) IsMember(node string) bool {
	return node != "" && slices.Contains(s.Members[:], node)
}

// Live reports whether a holder's lease is unexpired at now (cloud clock).
func (s State) Live(now time.Time) bool {
	return s.Holder != "" && now.Before(s.ExpiresAt)
}

// DurableEqual reports whether s and o agree on everything that is persisted.
func (s State) DurableEqual(o State) bool {
	return s.PairID == o.PairID && s.Holder == o.Holder && s.Epoch == o.Epoch && s.ExpiresAt.Equal(o.ExpiresAt) &&
		s.Members == o.Members && s.Version == o.Version
}
