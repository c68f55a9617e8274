package miners

import (
	"context"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Driver talks to one miner. A driver is owned by exactly one MinerActor, which calls it from one goroutine
// at a time, so implementations need no locking of their own state; they must honour ctx deadlines on every
// network operation and never panic on anything the miner sends.
type Driver interface {
	// Poll reads one telemetry sample. The returned sample has MinerId, ObservedAtUnixMs and State filled as the
	// driver sees them (MINING, STOPPED, CURTAILED or ONLINE); the MinerActor overlays REBOOTING / UNREACHABLE.
	// A reply the driver could not read is an error wrapping ErrMalformed with what was wrong.
	Poll(ctx context.Context) (*pb.Telemetry, error)
	// Execute performs one write or read command. Actions this model cannot do return an error wrapping
	// ErrUnsupported. The returned message is a short human-readable outcome ("restart accepted").
	Execute(ctx context.Context, spec *pb.CommandSpec) (string, error)
	// Close releases any idle connections. It is safe to call more than once.
	Close() error
}
