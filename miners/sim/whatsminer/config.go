package whatsminer

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config shapes a simulated Whatsminer fleet. Zero fields take the defaults below.
type Config struct {
	// Count is the number of miners. Default 1; at most 20000.
	Count int
	// Host is the listen address of every listener without PerMinerIP. Default "127.0.0.1"; ports are then
	// ephemeral.
	Host string
	// PerMinerIP puts miner i on its own loopback address, BaseIP plus i, every listener of it there, on
	// PortV2, PortV3 and StatePort, like a real site.
	PerMinerIP bool
	// BaseIP is the first miner's address with PerMinerIP. Default "127.50.0.1"; must stay in 127.0.0.0/8.
	BaseIP string
	// PortV2 and PortV3 are the API ports with PerMinerIP. Default 4028 and 4433. Without PerMinerIP they
	// must be 0.
	PortV2, PortV3 int
	// StatePort is where the internal CGMiner state side listens with PerMinerIP. Default 14028.
	StatePort int
	// Seed makes the miners (serial, MAC, hashrate) reproducible; passed to miners/sim.
	Seed int64
	// Clock is business time: token lifetime, v3 ts window, reboots, write-log times. Default clock.Real().
	Clock clock.Clock
	// IDPrefix starts every miner id. Default "wm-".
	IDPrefix string
	// Password is every miner's admin password (Miner.SetPassword changes one's). Default "admin".
	Password string
	// Account is the v3 account writes must name. Default "super".
	Account string
	// TokenTTL is how long a v2 token is accepted after get_token, on Clock. Default 30 min.
	TokenTTL time.Duration
	// TSWindow is how far a v3 write's ts may be from Clock's now. Default 60s.
	TSWindow time.Duration
	// RebootDuration is how long a rebooted miner stays unreachable, on Clock. Default 3s.
	RebootDuration time.Duration
	// MaxRequestBytes bounds one request; a larger one is answered with an error (v2) or the connection
	// closed (v3). Default 64 KiB.
	MaxRequestBytes int
	// IOTimeout is the wall-clock limit on reading a request and writing its reply. Default 5s.
	IOTimeout time.Duration
}

// Defaults; see Config.
const (
	DefaultCount           = 1
	DefaultHost            = "127.0.0.1"
	DefaultBaseIP          = "127.50.0.1"
	DefaultPortV2          = 4028
	DefaultPortV3          = 4433
	DefaultStatePort       = 14028
	DefaultIDPrefix        = "wm-"
	DefaultPassword        = "admin"
	DefaultAccount         = "super"
	DefaultTokenTTL        = 30 * time.Minute
	DefaultTSWindow        = 60 * time.Second
	DefaultRebootDuration  = 3 * time.Second
	DefaultMaxRequestBytes = 64 << 10
	DefaultIOTimeout       = 5 * time.Second

	maxCount  = 20000
	maxTokens = 64 // per miner; the oldest is forgotten first
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	var errs []error
	if c.Count < 0 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("whatsminer sim: Count must be between 1 and %d, got %d", maxCount, c.Count))
	}
	if c.TokenTTL < 0 || c.TSWindow < 0 || c.RebootDuration < 0 || c.IOTimeout < 0 || c.MaxRequestBytes < 0 {
		errs = append(errs, errors.New("whatsminer sim: durations and MaxRequestBytes must not be negative"))
	}
	if !c.PerMinerIP && (c.PortV2 != 0 || c.PortV3 != 0 || c.StatePort != 0) {
		errs = append(errs, errors.New("whatsminer sim: fixed ports need PerMinerIP"))
	}
	if c.PerMinerIP {
		d := c.withDefaults()
		if d.PortV2 == d.PortV3 || d.PortV2 == d.StatePort || d.PortV3 == d.StatePort {
			errs = append(errs, fmt.Errorf("whatsminer sim: PortV2, PortV3 and StatePort must differ, got %d, %d, %d", d.PortV2, d.PortV3, d.StatePort))
		}
		for _, p := range []int{d.PortV2, d.PortV3, d.StatePort} {
			if p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("whatsminer sim: port %d out of range", p))
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.Count, c.Host, c.IDPrefix = cmp.Or(c.Count, DefaultCount), cmp.Or(c.Host, DefaultHost), cmp.Or(c.IDPrefix, DefaultIDPrefix)
	c.Password, c.Account = cmp.Or(c.Password, DefaultPassword), cmp.Or(c.Account, DefaultAccount)
	c.TokenTTL, c.TSWindow, c.RebootDuration = cmp.Or(c.TokenTTL, DefaultTokenTTL), cmp.Or(c.TSWindow, DefaultTSWindow), cmp.Or(c.RebootDuration, DefaultRebootDuration)
	c.MaxRequestBytes, c.IOTimeout = cmp.Or(c.MaxRequestBytes, DefaultMaxRequestBytes), cmp.Or(c.IOTimeout, DefaultIOTimeout)
	c.BaseIP = cmp.Or(c.BaseIP, DefaultBaseIP)
	if c.PerMinerIP {
		c.PortV2, c.PortV3, c.StatePort = cmp.Or(c.PortV2, DefaultPortV2), cmp.Or(c.PortV3, DefaultPortV3), cmp.Or(c.StatePort, DefaultStatePort)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return c
}
