package braiins

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config shapes a simulated Braiins OS fleet. Zero fields take the defaults below.
type Config struct {
	// Count is the number of miners. Default 1; at most 20000.
	Count int
	// Host is the listen address of every listener without PerMinerIP. Default "127.0.0.1"; ports are then
	// ephemeral.
	Host string
	// PerMinerIP puts miner i on its own loopback address, BaseIP plus i, both listeners of it there, on
	// APIPort and GRPCPort, like a real site.
	PerMinerIP bool
	// BaseIP is the first miner's address with PerMinerIP. Default "127.60.0.1"; must stay in 127.0.0.0/8.
	BaseIP string
	// APIPort (the cgminer-compatible API) and GRPCPort with PerMinerIP. Default 4028 and 50051. Without
	// PerMinerIP they must be 0.
	APIPort, GRPCPort int
	// Seed makes the miners reproducible; passed to miners/sim.
	Seed int64
	// Clock is business time: token lifetime, reboots, write-log times. Default clock.Real().
	Clock clock.Clock
	// IDPrefix starts every miner id. Default "bos-".
	IDPrefix string
	// Username and Password are every miner's login (Miner.SetPassword changes one's). Default "root" and
	// "", as stock Braiins OS ships.
	Username string
	Password string
	// TokenTTL is how long a login token is good for, on Clock. Default 1h.
	TokenTTL time.Duration
	// RebootDuration is how long a rebooted miner stays unreachable, on Clock. Default 3s.
	RebootDuration time.Duration
	// HugeReplyBytes is the size of replies under FaultOversized. Default 8 MiB.
	HugeReplyBytes int
}

// Defaults; see Config.
const (
	DefaultCount          = 1
	DefaultHost           = "127.0.0.1"
	DefaultBaseIP         = "127.60.0.1"
	DefaultAPIPort        = 4028
	DefaultGRPCPort       = 50051
	DefaultIDPrefix       = "bos-"
	DefaultUsername       = "root"
	DefaultTokenTTL       = time.Hour
	DefaultRebootDuration = 3 * time.Second
	DefaultHugeReplyBytes = 8 << 20

	maxCount  = 20000
	maxTokens = 64 // per miner; the oldest is forgotten first
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	var errs []error
	if c.Count < 0 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("braiins sim: Count must be between 1 and %d, got %d", maxCount, c.Count))
	}
	if c.TokenTTL < 0 || c.RebootDuration < 0 || c.HugeReplyBytes < 0 {
		errs = append(errs, errors.New("braiins sim: TokenTTL, RebootDuration and HugeReplyBytes must not be negative"))
	}
	if !c.PerMinerIP && (c.APIPort != 0 || c.GRPCPort != 0) {
		errs = append(errs, errors.New("braiins sim: fixed ports need PerMinerIP"))
	}
	if d := c.withDefaults(); c.PerMinerIP && (d.APIPort == d.GRPCPort || d.APIPort < 1 || d.APIPort > 65535 || d.GRPCPort < 1 || d.GRPCPort > 65535) {
		errs = append(errs, fmt.Errorf("braiins sim: APIPort and GRPCPort must be distinct ports, got %d and %d", d.APIPort, d.GRPCPort))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.Count, c.Host, c.IDPrefix = cmp.Or(c.Count, DefaultCount), cmp.Or(c.Host, DefaultHost), cmp.Or(c.IDPrefix, DefaultIDPrefix)
	c.Username, c.TokenTTL = cmp.Or(c.Username, DefaultUsername), cmp.Or(c.TokenTTL, DefaultTokenTTL)
	c.RebootDuration, c.HugeReplyBytes = cmp.Or(c.RebootDuration, DefaultRebootDuration), cmp.Or(c.HugeReplyBytes, DefaultHugeReplyBytes)
	c.BaseIP = cmp.Or(c.BaseIP, DefaultBaseIP)
	if c.PerMinerIP {
		c.APIPort, c.GRPCPort = cmp.Or(c.APIPort, DefaultAPIPort), cmp.Or(c.GRPCPort, DefaultGRPCPort)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return c
}
