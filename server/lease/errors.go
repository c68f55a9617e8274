package lease

import "errors"

var (
	// ErrInvalidRequest: the request is malformed (no node id, unknown op, wrong pair).
	ErrInvalidRequest = errors.New("invalid lease request")
	// ErrNotMember: the requester (or the transfer target) is not one of the pair's two members.
	ErrNotMember = errors.New("node is not a member of this pair")
	// ErrStaleEpoch: RENEW, TRANSFER or RELEASE with an epoch older than the current one. The requester lost
	// the lease to another node and must demote itself.
	ErrStaleEpoch = errors.New("stale lease epoch")
	// ErrFutureEpoch: the request names an epoch this pair never issued (a store was lost or rolled back).
	ErrFutureEpoch = errors.New("lease epoch was never issued")
	// ErrNotHolder: RENEW, TRANSFER or RELEASE by a node that does not hold the lease.
	ErrNotHolder = errors.New("node does not hold the lease")
	// ErrExpired: RENEW or TRANSFER after the lease expired. The holder must ACQUIRE again (it keeps its
	// epoch if nobody took over meanwhile).
	ErrExpired = errors.New("lease expired")
	// ErrHeld: another node holds a lease that has not expired by Margin yet.
	ErrHeld = errors.New("lease is held by another node")
	// ErrHolderAlive: the holder's lease expired but the cloud still hears the holder (heartbeats within
	// HeartbeatTimeout); promoting now could make two writers.
	ErrHolderAlive = errors.New("lease holder is still heard by the cloud")
	// ErrBadTransfer: TRANSFER to nobody, to the holder itself, or to a non-member.
	ErrBadTransfer = errors.New("bad lease transfer target")
	// ErrNoPair: the state has no pair id or members (the pair was not declared).
	ErrNoPair = errors.New("pair is not declared")
	// ErrConflict: CompareAndSet found another version in the store (another activation wrote first).
	ErrConflict = errors.New("lease state changed concurrently")
	// ErrNotFound: the store has no state for the pair.
	ErrNotFound = errors.New("lease state not found")
	// ErrStore: the store failed; the request was not decided.
	ErrStore = errors.New("lease store failed")
	// ErrSyncWrites: the Badger database was opened without SyncWrites.
	ErrSyncWrites = errors.New("lease store needs a Badger database opened with SyncWrites")
)
