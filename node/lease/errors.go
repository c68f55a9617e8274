package lease

import "errors"

var (
	// ErrFenced: this node may not write to miners now (standby, lease lapsed, transferring).
	ErrFenced = errors.New("lease fenced: this node may not write to miners")
	// ErrConfirming: this node was just named the holder and waits for the cloud to confirm its lease (one
	// round trip); a command of that epoch may wait for it.
	ErrConfirming = errors.New("lease being confirmed: this node was just named the holder")
	// ErrWrongEpoch: a command carries another lease epoch than this node's current one.
	ErrWrongEpoch = errors.New("lease epoch is not this node's")
	// ErrNotHolder: TransferLease or ReleaseLease on a node that does not hold a valid lease.
	ErrNotHolder = errors.New("this node does not hold a valid lease")
	// ErrCloudDown: the request needs the cloud and the uplink is down.
	ErrCloudDown = errors.New("cloud unreachable")
	// ErrBadTransfer: transfer to nobody or to this node itself.
	ErrBadTransfer = errors.New("bad lease transfer target")
	// ErrBadMeta: a peer's gossip metadata cannot be decoded.
	ErrBadMeta = errors.New("undecodable lease metadata")
)
