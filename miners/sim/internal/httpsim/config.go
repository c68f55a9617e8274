package httpsim

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config is what an HTTP simulator's Config has in common with the others'; the simulators document each
// field under the same name.
type Config struct {
	// Name is the simulator's package name, which starts its error texts and names its certificate.
	Name string
	// SkipEnds makes PerMinerIP skip addresses ending in .0 and .255.
	SkipEnds bool

	Count      int
	Host       string
	Port       int // 0: ephemeral; without PerMinerIP miner i listens on Port+i
	PerMinerIP bool
	BaseIP     string
	Clock      clock.Clock
	IDPrefix   string
	TLS        bool

	RebootDuration    time.Duration
	SlowByteDelay     time.Duration
	HugeBodyBytes     int64
	RedirectURL       string
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
}

// Defaults and limits every HTTP simulator shares.
const (
	DefaultCount             = 10
	DefaultHost              = "127.0.0.1"
	DefaultSlowByteDelay     = 200 * time.Millisecond
	DefaultHugeBodyBytes     = 64 << 20
	DefaultRedirectURL       = "http://redirect.invalid"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second

	// MaxCount is the most miners one fleet runs.
	MaxCount = 20000
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes = 64 << 10
)

// WithDefaults returns c with its zero fields set: BaseIP, IDPrefix and RebootDuration to the simulator's
// own defaults given here, the others to the shared ones above and clock.Real().
func (c Config) WithDefaults(baseIP, idPrefix string, reboot time.Duration) Config {
	c.Count, c.Host, c.Clock = cmp.Or(c.Count, DefaultCount), cmp.Or(c.Host, DefaultHost), cmp.Or(c.Clock, clock.Real())
	c.BaseIP, c.IDPrefix, c.RebootDuration = cmp.Or(c.BaseIP, baseIP), cmp.Or(c.IDPrefix, idPrefix), cmp.Or(c.RebootDuration, reboot)
	c.SlowByteDelay, c.HugeBodyBytes = cmp.Or(c.SlowByteDelay, DefaultSlowByteDelay), cmp.Or(c.HugeBodyBytes, DefaultHugeBodyBytes)
	c.RedirectURL = cmp.Or(c.RedirectURL, DefaultRedirectURL)
	c.ReadHeaderTimeout, c.IdleTimeout = cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout), cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	return c
}

// Duration is one of a simulator's own duration settings, for Validate.
type Duration struct {
	Name  string
	Value time.Duration
}

// Validate reports what a fleet cannot start with; c has its defaults. own are the simulator's errors about
// its own settings, durations its own durations, which must not be negative either.
func (c Config) Validate(own []error, durations ...Duration) error {
	var errs []error
	if c.Count < 1 || c.Count > MaxCount {
		errs = append(errs, fmt.Errorf("%s: Count must be between 1 and %d, got %d", c.Name, MaxCount, c.Count))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("%s: Port must be between 0 and 65535, got %d", c.Name, c.Port))
	}
	if !c.PerMinerIP && c.Port != 0 && c.Port+c.Count-1 > 65535 {
		errs = append(errs, fmt.Errorf("%s: Port %d + Count %d runs past port 65535", c.Name, c.Port, c.Count))
	}
	if c.PerMinerIP {
		if _, err := c.IPs(); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := netip.ParseAddr(c.Host); err != nil && c.Host != "localhost" {
		errs = append(errs, fmt.Errorf("%s: Host must be an IP address or localhost, got %q", c.Name, c.Host))
	}
	errs = append(errs, own...)
	durations = append([]Duration{{"RebootDuration", c.RebootDuration}, {"SlowByteDelay", c.SlowByteDelay},
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"IdleTimeout", c.IdleTimeout}}, durations...)
	for _, d := range durations {
		if d.Value < 0 {
			errs = append(errs, fmt.Errorf("%s: %s must not be negative, got %v", c.Name, d.Name, d.Value))
		}
	}
	if c.HugeBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("%s: HugeBodyBytes must be at least 1 KiB, got %d", c.Name, c.HugeBodyBytes))
	}
	return errors.Join(errs...)
}

// IPs returns the Count loopback addresses of a PerMinerIP fleet: BaseIP and on, without those ending in .0
// or .255 with SkipEnds. All of them must be in 127.0.0.0/8.
func (c Config) IPs() ([]netip.Addr, error) {
	a, err := netip.ParseAddr(c.BaseIP)
	if err != nil || !a.Is4() || !loopback.Contains(a) {
		return nil, fmt.Errorf("%s: BaseIP must be an IPv4 address in 127.0.0.0/8, got %q", c.Name, c.BaseIP)
	}
	out := make([]netip.Addr, 0, c.Count)
	for ; len(out) < c.Count; a = NthIP(a, 1) {
		if !loopback.Contains(a) {
			return nil, fmt.Errorf("%s: %d addresses from BaseIP %s run out of 127.0.0.0/8", c.Name, c.Count, c.BaseIP)
		}
		if b := a.As4(); !c.SkipEnds || (b[3] != 0 && b[3] != 255) {
			out = append(out, a)
		}
	}
	return out, nil
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// ListenAddr is where miner i listens on host: Port, numbered from Port without PerMinerIP (0 stays 0,
// ephemeral).
func (c Config) ListenAddr(i int, host string) string {
	port := c.Port
	if !c.PerMinerIP && port != 0 {
		port += i
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// NthIP returns the IPv4 address n after base, carrying into the higher bytes.
func NthIP(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
