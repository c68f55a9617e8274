package artifacts

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"google.golang.org/grpc"
)

// Config configures the node's artifact client.
type Config struct {
	// NodeID goes in the x-hashfleet-node metadata. Required.
	NodeID string
	// Dial opens a connection to the cloud gateway. Required.
	Dial func(ctx context.Context) (*grpc.ClientConn, error)
	// Authorize returns a session token for a freshly dialled connection (split mode); nil sends none.
	Authorize func(ctx context.Context, conn *grpc.ClientConn) (token string, err error)
	// Dir holds downloads (Dir/<sha256>) and partial downloads (Dir/partial/). Required.
	Dir string
	// MaxConcurrent bounds transfers this node runs at once. Default 2.
	MaxConcurrent int
	// MaxSize bounds one artifact in bytes. Default 512 MiB.
	MaxSize int64
	// ReserveBytes is free space a download must leave on Dir's filesystem. Default 64 MiB.
	ReserveBytes int64
	// ChunkSize is the upload chunk in bytes. Default 256 KiB.
	ChunkSize int
	// Retries is how many times a dropped transfer is resumed before giving up. Default 8.
	Retries int
	// Backoff is the wait before the first resume; it doubles up to MaxBackoff. Default 200ms, 5s.
	Backoff, MaxBackoff time.Duration
	// CacheAge: a download not used for this long is removed (cache.go). Default 7 days; negative keeps them.
	CacheAge time.Duration
	// PartialAge: a partial download untouched this long is removed. Default 24h; negative keeps them.
	PartialAge time.Duration
	// FreeSpace reports the free bytes of the filesystem holding dir. Default statfs.
	FreeSpace func(dir string) (uint64, error)
	// Clock times the backoff. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults (NodeID, Dial and Dir are left for the caller).
func DefaultConfig() Config {
	return Config{MaxConcurrent: 2, MaxSize: 512 << 20, ReserveBytes: 64 << 20, ChunkSize: 256 << 10, Retries: 8,
		Backoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, FreeSpace: freeSpace,
		CacheAge: 7 * 24 * time.Hour, PartialAge: 24 * time.Hour}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("artifacts: NodeID is required")
	case c.Dial == nil:
		return errors.New("artifacts: Dial is required")
	case c.Dir == "":
		return errors.New("artifacts: Dir is required")
	case c.MaxConcurrent < 1:
		return errors.New("artifacts: MaxConcurrent must be at least 1")
	case c.MaxSize < 1:
		return errors.New("artifacts: MaxSize must be positive")
	case c.ReserveBytes < 0:
		return errors.New("artifacts: ReserveBytes must not be negative")
	case c.ChunkSize < 1 || c.ChunkSize > 2<<20:
		return errors.New("artifacts: ChunkSize must be between 1 byte and 2 MiB")
	case c.Retries < 0:
		return errors.New("artifacts: Retries must not be negative")
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return errors.New("artifacts: Backoff must be positive and MaxBackoff at least Backoff")
	case c.FreeSpace == nil:
		return errors.New("artifacts: FreeSpace is required")
	}
	return nil
}
