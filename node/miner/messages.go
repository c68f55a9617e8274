package miner

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Execute asks a MinerActor to run one command. It answers the sender with a *Result once the command is
// final. Commands run one at a time in arrival order. A second Execute with an IdempotencyKey already seen
// (queued, running or finished) does not run again: it gets the same result.
type Execute struct {
	CommandID string
	// IdempotencyKey identifies the command across re-sends; empty uses CommandID.
	IdempotencyKey string
	Spec           *pb.CommandSpec
}

// Result is a MinerActor's answer to Execute.
type Result struct {
	CommandID string
	Result    *pb.MinerResult
}

// StatusRequest asks a MinerActor for its Status (answered with a Status value holding copies).
type StatusRequest struct{}

// StatusUpdate is what a MinerActor pushes to its parent after every poll and command, for the site's read
// model. The samples in it are never modified after being sent; readers must not modify them either.
type StatusUpdate struct{ Status Status }

// Status is a MinerActor's view of its miner.
type Status struct {
	MinerID string
	Device  *pb.Device
	State   pb.MinerState
	// StateSince is when State was entered (zero before the first poll).
	StateSince time.Time
	// Sample is the last sample reported: a failed poll's sample has PollError set and no readings.
	Sample *pb.Telemetry
	// LastGood is the last successfully read sample.
	LastGood *pb.Telemetry
	// LastError is the last poll or command error, empty after a good poll.
	LastError           string
	LastPollAt          time.Time
	ConsecutiveFailures int
	Polls, PollErrors   uint64
	QueuedCommands      int
}

// Internal messages. Each carries the incarnation it belongs to, so that ticks and I/O results addressed to a
// previous incarnation (before a restart) are recognised and dropped.
type pollTick struct{ inc, gen uint64 }

type pollDone struct {
	inc, op uint64
	sample  *pb.Telemetry
	err     error
	latency time.Duration
}

type cmdDone struct {
	inc, op           uint64
	message           string
	err               error
	started, finished time.Time
}

type driverPanic struct {
	inc, op uint64
	value   any
	stack   []byte
}
