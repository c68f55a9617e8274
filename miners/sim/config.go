package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config describes a simulated site. Zero fields take the defaults below.
type Config struct {
	// Count is the number of miners. Default 1.
	Count int
	// Host is the listen host when PerMinerIP is false. Default "127.0.0.1".
	Host string
	// Port 0 gives every miner its own ephemeral port (default). With PerMinerIP it is the port every miner
	// uses, e.g. 4028; without PerMinerIP it is only allowed for a single miner.
	Port int
	// PerMinerIP puts each miner on its own address, BaseIP, BaseIP+1, …, like a real site. On Linux the
	// whole of 127.0.0.0/8 is local, so no set-up is needed on loopback.
	PerMinerIP bool
	// BaseIP is the first miner's address with PerMinerIP. Default "127.1.0.1".
	BaseIP string
	// Seed makes the per-miner variation (model, serial, MAC, hashrate, temperatures) deterministic.
	Seed int64
	// Clock drives state evolution (uptime, share counters, noise windows) and reboot timing. Default
	// clock.Real().
	Clock clock.Clock
	// RebootDuration is how long a restarted miner stays unreachable, on Clock. Default 3s.
	RebootDuration time.Duration
	// SlowDelay is how long a miner in FaultSlow waits before replying. It is wall-clock time, since it is
	// measured against the client's network deadlines. Default 5s.
	SlowDelay time.Duration
	// IDPrefix prefixes miner ids, which are IDPrefix followed by the miner's index from 0: stable across
	// runs. Default "sim-".
	IDPrefix string
	// Software is the miner software the API announces in version and stats: SoftwareBMMiner (stock
	// Antminer firmware, the default) or SoftwareBOSminer (Braiins OS, whose bosminer serves this API).
	Software string
}

// Miner software a simulated API announces (Config.Software).
const (
	SoftwareBMMiner  = "bmminer"
	SoftwareBOSminer = "bosminer"
)

// Defaults; see Config.
const (
	DefaultHost           = "127.0.0.1"
	DefaultBaseIP         = "127.1.0.1"
	DefaultRebootDuration = 3 * time.Second
	DefaultSlowDelay      = 5 * time.Second
	DefaultIDPrefix       = "sim-"

	maxCount = 1 << 20
)

// DefaultConfig returns one miner on an ephemeral loopback port.
func DefaultConfig() Config {
	return Config{
		Count:          1,
		Host:           DefaultHost,
		BaseIP:         DefaultBaseIP,
		Clock:          clock.Real(),
		RebootDuration: DefaultRebootDuration,
		SlowDelay:      DefaultSlowDelay,
		IDPrefix:       DefaultIDPrefix,
	}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Count == 0 {
		c.Count = def.Count
	}
	if c.Host == "" {
		c.Host = def.Host
	}
	if c.BaseIP == "" {
		c.BaseIP = def.BaseIP
	}
	if c.Clock == nil {
		c.Clock = def.Clock
	}
	if c.RebootDuration == 0 {
		c.RebootDuration = def.RebootDuration
	}
	if c.SlowDelay == 0 {
		c.SlowDelay = def.SlowDelay
	}
	if c.IDPrefix == "" {
		c.IDPrefix = def.IDPrefix
	}
	return c
}

// Validate reports settings the simulator cannot run with. Zero fields are valid (they take defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Count < 0 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("sim: Count must be between 1 and %d, got %d", maxCount, c.Count))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("sim: Port must be between 0 and 65535, got %d", c.Port))
	}
	if c.Port != 0 && !c.PerMinerIP && c.Count > 1 {
		errs = append(errs, fmt.Errorf("sim: %d miners cannot share port %d on one host: use Port 0 or PerMinerIP", c.Count, c.Port))
	}
	if c.RebootDuration < 0 {
		errs = append(errs, fmt.Errorf("sim: RebootDuration must not be negative, got %v", c.RebootDuration))
	}
	if c.SlowDelay < 0 {
		errs = append(errs, fmt.Errorf("sim: SlowDelay must not be negative, got %v", c.SlowDelay))
	}
	if c.Software != "" && c.Software != SoftwareBMMiner && c.Software != SoftwareBOSminer {
		errs = append(errs, fmt.Errorf("sim: Software %q is neither %q nor %q", c.Software, SoftwareBMMiner, SoftwareBOSminer))
	}
	if c.PerMinerIP {
		if _, err := minerIPs(c.withDefaults()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// minerIPs returns the first address and checks that Count addresses from BaseIP stay inside BaseIP's /8
// (so a loopback base stays on loopback).
func minerIPs(c Config) (netip.Addr, error) {
	base, err := netip.ParseAddr(c.BaseIP)
	if err != nil || !base.Is4() {
		return netip.Addr{}, fmt.Errorf("sim: BaseIP must be an IPv4 address, got %q", c.BaseIP)
	}
	b := base.As4()
	if last := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(c.Count-1); last > 0xFFFFFF {
		return netip.Addr{}, fmt.Errorf("sim: %d miners from BaseIP %s run past %d.255.255.255", c.Count, base, b[0])
	}
	return base, nil
}
