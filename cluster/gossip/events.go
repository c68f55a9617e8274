package gossip

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// PeerState is a peer's state as this member sees it.
type PeerState int

const (
	// PeerAlive: the peer answers probes.
	PeerAlive PeerState = iota + 1
	// PeerSuspect: a probe failed; the peer is declared dead after SM × PI unless it refutes.
	PeerSuspect
	// PeerDead: the peer failed and did not refute.
	PeerDead
	// PeerLeft: the peer left gracefully (Stop).
	PeerLeft
)

func (s PeerState) String() string {
	switch s {
	case PeerAlive:
		return "alive"
	case PeerSuspect:
		return "suspect"
	case PeerDead:
		return "dead"
	case PeerLeft:
		return "left"
	}
	return "unknown"
}

// PeerEvent reports a peer's new state or metadata.
type PeerEvent struct {
	// Name is the peer's node name.
	Name string
	// Addr is the peer's "host:port".
	Addr  string
	State PeerState
	// Meta is the peer's metadata (SetMeta on the peer).
	Meta []byte
	// At is when this member noticed, on the wall clock (memberlist runs on it); informational.
	At time.Time
}

// Sink receives PeerEvents from the dispatcher goroutine, one at a time in order. It may block until ctx
// is done (Stop), never longer.
type Sink func(ctx context.Context, ev PeerEvent)

// ChannelSink delivers events to ch, waiting for the reader until Stop.
func ChannelSink(ch chan<- PeerEvent) Sink {
	return func(ctx context.Context, ev PeerEvent) {
		select {
		case ch <- ev:
		case <-ctx.Done():
		}
	}
}

// ActorSink delivers each event as a *PeerEvent message to pid.
func ActorSink(sender actor.SenderContext, pid *actor.PID) Sink {
	return func(_ context.Context, ev PeerEvent) {
		e := ev
		sender.Send(pid, &e)
	}
}
