package protorig

import "errors"

var (
	// ErrUnknownMiner: no miner with that id in this fleet.
	ErrUnknownMiner = errors.New("protorig: unknown miner")
	// ErrClosed: the fleet is closed.
	ErrClosed = errors.New("protorig: fleet closed")
)
