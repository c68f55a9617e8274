package artifacts

import (
	"context"
	"errors"
	"log/slog"
)

// Config configures the gateway's Artifacts service.
type Config struct {
	// Authenticate returns the node a stream belongs to (the gateway's Authenticator). Required.
	Authenticate func(ctx context.Context) (nodeID string, err error)
	// MaxPerNode bounds concurrent transfers (fetches plus puts) per node. Default 2.
	MaxPerNode int
	// ChunkSize is the bytes per ArtifactChunk sent. Default 256 KiB (below gRPC's 4 MiB message limit).
	ChunkSize int
	// CommandNames, when set, lets a node fetch an artifact without a Grant when the command it names was
	// issued to that node and names that sha256 (a firmware update): nil error means allowed.
	CommandNames func(ctx context.Context, node, command, sha string) error
	// CommandAsks, when set, lets a node put an artifact without a Grant when the command it names was
	// issued to that node and asks for an upload (download logs): nil error means allowed.
	CommandAsks func(ctx context.Context, node, command string) error
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults (Authenticate is left for the caller).
func DefaultConfig() Config { return Config{MaxPerNode: 2, ChunkSize: 256 << 10} }

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Authenticate == nil:
		return errors.New("artifacts: Authenticate is required")
	case c.MaxPerNode < 1:
		return errors.New("artifacts: MaxPerNode must be at least 1")
	case c.ChunkSize < 1 || c.ChunkSize > 2<<20:
		return errors.New("artifacts: ChunkSize must be between 1 byte and 2 MiB")
	}
	return nil
}
