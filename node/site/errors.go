package site

import "errors"

var (
	// ErrUnknownMiner: no miner with that id on this node.
	ErrUnknownMiner = errors.New("unknown miner")
	// ErrMinerStopped: the miner's actor failed too often and was stopped by its supervisor.
	ErrMinerStopped = errors.New("miner actor stopped after repeated failures")
	// ErrDuplicateDevice: the device list names one miner id twice.
	ErrDuplicateDevice = errors.New("duplicate miner id in device list")
)
