package whatsminer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config tunes one driver. Zero fields take the defaults below.
type Config struct {
	// APIVersion is 2 (TCP 4028, AES envelope for writes) or 3 (TCP 4433, length-prefixed JSON). Default 2.
	APIVersion int
	// Password is the admin password writes are authenticated with. Default "admin", the factory password.
	Password string
	// Account is the v3 account writes are made as. Default "super".
	Account string
	// DialTimeout bounds the TCP connect. Default 2s.
	DialTimeout time.Duration
	// ReadTimeout is the whole-exchange deadline: connect, send, read the reply. An earlier ctx deadline
	// wins. Default 3s.
	ReadTimeout time.Duration
	// MaxReplyBytes bounds one reply (a v3 frame included); more is an error wrapping miners.ErrMalformed.
	// Default 256 KiB; between 4 KiB and 16 MiB.
	MaxReplyBytes int
	// TokenRefresh is how long a v2 token is reused before a new get_token, on Clock. Default 25 min (the
	// firmware keeps tokens 30 min); at most 30 min.
	TokenRefresh time.Duration
	// InfoTTL is how long the rarely changing model, serial, MAC and firmware are cached. Default 10 min.
	InfoTTL time.Duration
	// Clock stamps samples, ages tokens and the info cache, and gives v3's ts. Default clock.Real().
	Clock clock.Clock
	// Dialer opens TCP connections; it must honour ctx. Default a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults; see Config.
const (
	DefaultAPIVersion    = 2
	DefaultPassword      = "admin"
	DefaultAccount       = "super"
	DefaultDialTimeout   = 2 * time.Second
	DefaultReadTimeout   = 3 * time.Second
	DefaultMaxReplyBytes = 256 << 10
	DefaultTokenRefresh  = 25 * time.Minute
	DefaultInfoTTL       = 10 * time.Minute

	// DefaultPortV2 and DefaultPortV3 are the firmware's API ports.
	DefaultPortV2 = 4028
	DefaultPortV3 = 4433

	minReplyBytes   = 4 << 10
	maxReplyBytes   = 16 << 20
	maxTokenRefresh = 30 * time.Minute
)

var defaultDial = (&net.Dialer{}).DialContext

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports values the driver cannot work with.
func (c Config) Validate() error {
	var errs []error
	if c.APIVersion != 0 && c.APIVersion != 2 && c.APIVersion != 3 {
		errs = append(errs, fmt.Errorf("whatsminer: APIVersion must be 2 or 3, got %d", c.APIVersion))
	}
	if c.DialTimeout < 0 || c.ReadTimeout < 0 || c.InfoTTL < 0 {
		errs = append(errs, errors.New("whatsminer: DialTimeout, ReadTimeout and InfoTTL must not be negative"))
	}
	if c.MaxReplyBytes != 0 && (c.MaxReplyBytes < minReplyBytes || c.MaxReplyBytes > maxReplyBytes) {
		errs = append(errs, fmt.Errorf("whatsminer: MaxReplyBytes must be between %d and %d, got %d", minReplyBytes, maxReplyBytes, c.MaxReplyBytes))
	}
	if c.TokenRefresh < 0 || c.TokenRefresh > maxTokenRefresh {
		errs = append(errs, fmt.Errorf("whatsminer: TokenRefresh must be between 0 and %v, got %v", maxTokenRefresh, c.TokenRefresh))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.APIVersion, c.Password, c.Account = cmp.Or(c.APIVersion, DefaultAPIVersion), cmp.Or(c.Password, DefaultPassword), cmp.Or(c.Account, DefaultAccount)
	c.DialTimeout, c.ReadTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout), cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.MaxReplyBytes, c.TokenRefresh, c.InfoTTL = cmp.Or(c.MaxReplyBytes, DefaultMaxReplyBytes), cmp.Or(c.TokenRefresh, DefaultTokenRefresh), cmp.Or(c.InfoTTL, DefaultInfoTTL)
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Dialer == nil {
		c.Dialer = defaultDial
	}
	return c
}
