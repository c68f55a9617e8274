package mixed

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	bossim "github.com/hashfleet/hashfleet/miners/sim/braiins"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
	wmsim "github.com/hashfleet/hashfleet/miners/sim/whatsminer"
)

// Config shapes a mixed site. The counts are taken as given (zero is none); other zero fields take the
// defaults of DefaultConfig.
type Config struct {
	// Antminer, Proto and CGMiner are how many miners of each kind run: Antminers with CGMiner API and web
	// CGI, Proto rigs with the MDK REST API, and CGMiner-only miners. At least one in all; at most 20,000 of
	// each. DefaultConfig: 140 Antminers and 60 Proto rigs (the demo's 200 miners, 70/30).
	Antminer, Proto, CGMiner int
	// Whatsminer and Braiins are how many Whatsminers (API v2 on APIPort, v3 on 4433; miners/sim/whatsminer)
	// and Braiins OS miners (cgminer API on APIPort, gRPC on 50051; miners/sim/braiins) run. Default 0.
	Whatsminer, Braiins int
	// Seed makes every miner's identity and readings reproducible; each kind gets its own seed derived from
	// it, so no two miners of the site share a serial or MAC.
	Seed int64
	// Clock is business time for all three kinds. Default clock.Real().
	Clock clock.Clock
	// PerMinerIP gives every miner its own loopback address, the kinds in consecutive blocks from BaseIP:
	// Antminers first, then Proto rigs (which skip addresses ending in .0 and .255), then CGMiner-only.
	PerMinerIP bool
	// BaseIP is the first address with PerMinerIP. Default "127.40.0.1"; the whole site must fit in 127.0.0.0/8.
	BaseIP string
	// Host is where every miner listens without PerMinerIP, on ephemeral ports. Default "127.0.0.1".
	Host string
	// APIPort is the CGMiner API port of Antminers and CGMiner-only miners with PerMinerIP; 0 takes the
	// default, 4028. Without PerMinerIP it must be 0 (ephemeral ports).
	APIPort int
	// WebPort is the Antminer web CGI and Proto rig REST port with PerMinerIP; 0 takes the default, 8080 (real
	// firmware uses 80, which needs privileges to bind). Without PerMinerIP it must be 0.
	WebPort int
	// AntminerBase, ProtoBase and CGMinerBase tune each kind beyond this Config (credentials, TLS, reboot
	// durations, fault timings, IDPrefix). Their Count, Seed, Clock, Host, PerMinerIP, BaseIP and ports are
	// set from this Config. Zero values take each simulator's defaults, with IDPrefix "ant-", "proto-" and
	// "cgm-".
	AntminerBase antweb.Config
	ProtoBase    protorig.Config
	CGMinerBase  sim.Config
	// WhatsminerBase and BraiinsBase tune the two other kinds the same way (IDPrefix default "wm-", "bos-").
	WhatsminerBase wmsim.Config
	BraiinsBase    bossim.Config
}

// Defaults; see Config.
const (
	DefaultAntminer        = 140
	DefaultProto           = 60
	DefaultBaseIP          = "127.40.0.1"
	DefaultHost            = "127.0.0.1"
	DefaultAPIPort         = 4028
	DefaultWebPort         = 8080
	DefaultCGMinerIDPrefix = "cgm-"

	maxPerKind = 20000
)

// DefaultConfig returns a 200-miner site, 70% Antminers and 30% Proto rigs, on 127.0.0.1 with ephemeral
// ports.
func DefaultConfig() Config {
	return Config{
		Antminer: DefaultAntminer,
		Proto:    DefaultProto,
		Clock:    clock.Real(),
		BaseIP:   DefaultBaseIP,
		Host:     DefaultHost,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.BaseIP == "" {
		c.BaseIP = d.BaseIP
	}
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.PerMinerIP {
		if c.APIPort == 0 {
			c.APIPort = DefaultAPIPort
		}
		if c.WebPort == 0 {
			c.WebPort = DefaultWebPort
		}
	}
	if c.AntminerBase.IDPrefix == "" {
		c.AntminerBase.IDPrefix = antweb.DefaultIDPrefix
	}
	if c.ProtoBase.IDPrefix == "" {
		c.ProtoBase.IDPrefix = protorig.DefaultIDPrefix
	}
	if c.CGMinerBase.IDPrefix == "" {
		c.CGMinerBase.IDPrefix = DefaultCGMinerIDPrefix
	}
	if c.WhatsminerBase.IDPrefix == "" {
		c.WhatsminerBase.IDPrefix = wmsim.DefaultIDPrefix
	}
	if c.BraiinsBase.IDPrefix == "" {
		c.BraiinsBase.IDPrefix = bossim.DefaultIDPrefix
	}
	return c
}

// Validate reports settings the site cannot start with. The simulators check their own base configs when
// the site starts.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, k := range []struct {
		name string
		n    int
	}{{"Antminer", c.Antminer}, {"Proto", c.Proto}, {"CGMiner", c.CGMiner}, {"Whatsminer", c.Whatsminer}, {"Braiins", c.Braiins}} {
		if k.n < 0 || k.n > maxPerKind {
			errs = append(errs, fmt.Errorf("mixed: %s count must be between 0 and %d, got %d", k.name, maxPerKind, k.n))
		}
	}
	total := c.Antminer + c.Proto + c.CGMiner + c.Whatsminer + c.Braiins
	if total < 1 {
		errs = append(errs, errors.New("mixed: the site needs at least one miner (every kind's count is 0)"))
	}
	if c.APIPort < 0 || c.APIPort > 65535 || c.WebPort < 0 || c.WebPort > 65535 {
		errs = append(errs, fmt.Errorf("mixed: APIPort and WebPort must be between 0 and 65535, got %d and %d", c.APIPort, c.WebPort))
	}
	if c.PerMinerIP {
		if c.APIPort == c.WebPort {
			errs = append(errs, fmt.Errorf("mixed: APIPort and WebPort must differ, both are %d", c.APIPort))
		}
		base, err := netip.ParseAddr(c.BaseIP)
		if err != nil || !base.Is4() || base.As4()[0] != 127 {
			errs = append(errs, fmt.Errorf("mixed: BaseIP must be an IPv4 address in 127.0.0.0/8, got %q", c.BaseIP))
		} else {
			b := base.As4()
			offset := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
			// Proto rigs skip .0 and .255: at most 2 in 256 extra addresses.
			if need := offset + total + c.Proto/128 + 2; need > 1<<24 {
				errs = append(errs, fmt.Errorf("mixed: %d miners from BaseIP %s do not fit in 127.0.0.0/8", total, c.BaseIP))
			}
		}
	} else if c.APIPort != 0 || c.WebPort != 0 {
		errs = append(errs, errors.New("mixed: fixed APIPort and WebPort need PerMinerIP (miners sharing a host use ephemeral ports)"))
	}
	prefixes := []string{c.AntminerBase.IDPrefix, c.ProtoBase.IDPrefix, c.CGMinerBase.IDPrefix, c.WhatsminerBase.IDPrefix, c.BraiinsBase.IDPrefix}
	for i, p := range prefixes {
		for j, q := range prefixes {
			if i != j && strings.HasPrefix(p, q) {
				errs = append(errs, fmt.Errorf("mixed: IDPrefix %q starts with IDPrefix %q of another kind: ids could collide", p, q))
			}
		}
	}
	return errors.Join(errs...)
}

// Kinds as ParseMix spells them.
const (
	mixAntminer = "antminer"
	mixProto    = "proto"
	mixCGMiner  = "cgminer"
	mixWM       = "whatsminer"
	mixBraiins  = "braiins"
)

// ParseMix reads a mix such as "antminer=70,proto=30" (percentages of total, each a whole number, summing
// to 100; "cgminer", "whatsminer" and "braiins" are the other kinds; a trailing % is allowed) into DefaultConfig with those counts. Counts
// are rounded by largest remainder, so they always add up to total (ties go to the kind named first).
func ParseMix(s string, total int) (Config, error) {
	if total < 1 || total > 5*maxPerKind {
		return Config{}, fmt.Errorf("%w: total must be between 1 and %d, got %d", ErrBadMix, 5*maxPerKind, total)
	}
	if strings.TrimSpace(s) == "" {
		return Config{}, fmt.Errorf("%w: empty (want e.g. \"antminer=70,proto=30\")", ErrBadMix)
	}
	type part struct {
		kind string
		pct  int
	}
	var parts []part
	sum := 0
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSuffix(strings.TrimSpace(v), "%")
		if !ok || k == "" {
			return Config{}, fmt.Errorf("%w: %q is not kind=percent", ErrBadMix, item)
		}
		if k != mixAntminer && k != mixProto && k != mixCGMiner && k != mixWM && k != mixBraiins {
			return Config{}, fmt.Errorf("%w: unknown kind %q (antminer, proto, cgminer, whatsminer or braiins)", ErrBadMix, k)
		}
		if slices.ContainsFunc(parts, func(p part) bool { return p.kind == k }) {
			return Config{}, fmt.Errorf("%w: %s given twice", ErrBadMix, k)
		}
		pct, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || pct < 0 || pct > 100 {
			return Config{}, fmt.Errorf("%w: %s=%q is not a whole percentage between 0 and 100", ErrBadMix, k, v)
		}
		parts = append(parts, part{k, pct})
		sum += pct
	}
	if sum != 100 {
		return Config{}, fmt.Errorf("%w: percentages add up to %d, not 100", ErrBadMix, sum)
	}
	counts := make([]int, len(parts))
	rems := make([]int, len(parts))
	assigned := 0
	for i, p := range parts {
		counts[i] = total * p.pct / 100
		rems[i] = total * p.pct % 100
		assigned += counts[i]
	}
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rems[b] - rems[a] })
	for i := 0; assigned < total; i++ {
		counts[order[i%len(order)]]++
		assigned++
	}
	cfg := DefaultConfig()
	cfg.Antminer, cfg.Proto, cfg.CGMiner = 0, 0, 0
	for i, p := range parts {
		switch p.kind {
		case mixAntminer:
			cfg.Antminer = counts[i]
		case mixProto:
			cfg.Proto = counts[i]
		case mixCGMiner:
			cfg.CGMiner = counts[i]
		case mixWM:
			cfg.Whatsminer = counts[i]
		case mixBraiins:
			cfg.Braiins = counts[i]
		}
	}
	for _, n := range []int{cfg.Antminer, cfg.Proto, cfg.CGMiner, cfg.Whatsminer, cfg.Braiins} {
		if n > maxPerKind {
			return Config{}, fmt.Errorf("%w: %d miners of one kind, at most %d", ErrBadMix, n, maxPerKind)
		}
	}
	return cfg, nil
}
