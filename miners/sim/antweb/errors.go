package antweb

import "errors"

var (
	// ErrUnknownMiner: no miner with that id in this fleet.
	ErrUnknownMiner = errors.New("antweb: unknown miner")
	// ErrClosed: the fleet is closed.
	ErrClosed = errors.New("antweb: fleet closed")
)
