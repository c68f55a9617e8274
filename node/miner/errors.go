package miner

import "errors"

var (
	// ErrNoSpec: an Execute message without a command spec.
	ErrNoSpec = errors.New("command has no spec")
	// ErrActorStopped: the command was queued or running when the MinerActor stopped or restarted; whether a
	// running command took effect on the miner is unknown.
	ErrActorStopped = errors.New("miner actor stopped before the command finished")
	// ErrDriver: the DriverFactory could not make a driver for the device.
	ErrDriver = errors.New("no driver for device")
	// ErrDriverPanic: the driver panicked; the actor is restarted by its supervisor.
	ErrDriverPanic = errors.New("driver panicked")
	// ErrFenced: the node may not write to miners now (a warm-standby pair's lease: standby, lapsed, handing
	// over); the command did not reach the miner. Answered RESULT_CODE_FENCED.
	ErrFenced = errors.New("fenced: this node may not write to miners now")
)
