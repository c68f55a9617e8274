package node

import "errors"

var (
	// ErrNotStarted: a query or Stop before Start.
	ErrNotStarted = errors.New("node not started")
	// ErrAlreadyStarted: Start called twice.
	ErrAlreadyStarted = errors.New("node already started")
	// ErrStopped: the node was stopped; make a new one to run again.
	ErrStopped = errors.New("node stopped")
	// ErrNoUplink: the node has no cloud link configured (Config.Dial is nil).
	ErrNoUplink = errors.New("no cloud link configured")
	// ErrNoSuchStore: InspectStore of a store the node does not have open (a spool without DataDir or cloud
	// link, or an unknown kind).
	ErrNoSuchStore = errors.New("the node has no such store open")
	// ErrNotPaired: a lease operation on a node that is not in a warm-standby pair.
	ErrNotPaired = errors.New("this node is not in a warm-standby pair")
	// ErrBadPairInfo: the cloud's PairInfo cannot be acted on (missing pair id, partner or members).
	ErrBadPairInfo = errors.New("unusable pair info")
	// ErrPairKey: the pair key envelope cannot be opened with this node's credential key.
	ErrPairKey = errors.New("pair key")
)
