package cgminer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config tunes one driver. Zero fields take the defaults below; New does not fail, so call Validate on
// operator-supplied values first.
type Config struct {
	// DialTimeout bounds the TCP connect, inside the whole-request deadline. Default 2s.
	DialTimeout time.Duration
	// ReadTimeout is the whole-request deadline: connect, send the command and read the reply to its end. An
	// earlier ctx deadline wins. A miner that does not answer in time is ErrUnreachable with "timed out" in
	// the message. Default 3s.
	ReadTimeout time.Duration
	// MaxReplyBytes bounds one reply; a larger one is an error wrapping miners.ErrMalformed. A full S19
	// summary+stats+pools reply is about 6 KiB. Default 1 MiB.
	MaxReplyBytes int
	// Dialer opens the TCP connection. It must honour ctx, which carries the dial deadline. Default: a
	// net.Dialer. Tests inject faults here.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Clock stamps ObservedAtUnixMs. Poll latency is measured on the wall clock regardless. Default
	// clock.Real().
	Clock clock.Clock
}

// Defaults; see Config.
const (
	DefaultDialTimeout   = 2 * time.Second
	DefaultReadTimeout   = 3 * time.Second
	DefaultMaxReplyBytes = 1 << 20

	minReplyBytes = 4 << 10
	maxReplyBytes = 64 << 20
)

// defaultDial is the default Dialer, shared by every driver: a net.Dialer is safe for concurrent use, and one
// per driver (withDefaults runs in New) was ≈200 B of heap a miner.
var defaultDial = (&net.Dialer{}).DialContext

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{
		DialTimeout:   DefaultDialTimeout,
		ReadTimeout:   DefaultReadTimeout,
		MaxReplyBytes: DefaultMaxReplyBytes,
		Dialer:        defaultDial,
		Clock:         clock.Real(),
	}
}

// Validate reports values the driver cannot work with, in terms an operator can act on.
func (c Config) Validate() error {
	var errs []error
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("cgminer: DialTimeout must be positive, got %v", c.DialTimeout))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("cgminer: ReadTimeout must be positive, got %v", c.ReadTimeout))
	}
	if c.MaxReplyBytes != 0 && (c.MaxReplyBytes < minReplyBytes || c.MaxReplyBytes > maxReplyBytes) {
		errs = append(errs, fmt.Errorf("cgminer: MaxReplyBytes must be between %d and %d bytes, got %d",
			minReplyBytes, maxReplyBytes, c.MaxReplyBytes))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.DialTimeout == 0 {
		c.DialTimeout = def.DialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = def.ReadTimeout
	}
	if c.MaxReplyBytes == 0 {
		c.MaxReplyBytes = def.MaxReplyBytes
	}
	if c.Dialer == nil {
		c.Dialer = def.Dialer
	}
	if c.Clock == nil {
		c.Clock = def.Clock
	}
	return c
}
