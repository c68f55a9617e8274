package gossip

import "errors"

var (
	// ErrConfig: the configuration cannot work (see the wrapped message).
	ErrConfig = errors.New("invalid gossip configuration")
	// ErrStopped: the Gossip was stopped.
	ErrStopped = errors.New("gossip stopped")
	// ErrMetaTooLarge: local metadata above MaxMeta (511 bytes).
	ErrMetaTooLarge = errors.New("gossip metadata too large")
	// ErrPeersFile: the persisted peers file cannot be read or written.
	ErrPeersFile = errors.New("gossip peers file")
)
