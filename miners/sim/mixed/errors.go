package mixed

import "errors"

var (
	// ErrUnknownMiner: no miner with that id in this fleet.
	ErrUnknownMiner = errors.New("mixed: unknown miner")
	// ErrBadMix: a mix string ParseMix cannot read.
	ErrBadMix = errors.New("mixed: invalid mix")
)
