package antweb

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// Config shapes a simulated Antminer fleet. Zero fields take the defaults of DefaultConfig, except the
// booleans.
type Config struct {
	// Count is the number of miners. Default 10; at most 20000.
	Count int
	// Host is the address both listeners of every miner use when PerMinerIP is false. Default "127.0.0.1".
	Host string
	// Port is the web port. 0 (the default): ephemeral. With PerMinerIP every miner uses this port on its
	// own address (80 on a real site); without it miner i listens on Port+i.
	Port int
	// APIPort is the CGMiner API port. 0 (the default): ephemeral. Fixed ports need PerMinerIP (4028 on a
	// real site), since miners/sim does not number ports.
	APIPort int
	// PerMinerIP puts miner i on its own loopback address, BaseIP plus i, both listeners on it.
	PerMinerIP bool
	// BaseIP is the first miner's address with PerMinerIP. Default "127.30.0.1"; must stay in 127.0.0.0/8.
	BaseIP string
	// Seed makes the miners (model, serial, MAC, hashrate) reproducible; passed to miners/sim.
	Seed int64
	// Clock is business time: nonce lifetime, reboot duration, write-log timestamps, and the sim's state.
	// Default clock.Real().
	Clock clock.Clock
	// IDPrefix starts every miner id (IDPrefix + index, as miners/sim numbers them). Default "ant-".
	IDPrefix string
	// Username and Password are every miner's web credentials (stock firmware: root/root). Default
	// "root"/"root". Miner.SetCredentials changes one miner's.
	Username string
	Password string
	// Realm is the digest realm. Default "antMiner Configuration", as stock firmware.
	Realm string
	// DigestAlgorithms are the algorithms offered, one challenge each, in order: "MD5", "MD5-sess",
	// "SHA-256", "SHA-256-sess". Default ["MD5"], as stock firmware.
	DigestAlgorithms []string
	// NonceTTL is how long a nonce is good for, on Clock; after that a correct response gets stale=true.
	// Default 5 min.
	NonceTTL time.Duration
	// TLS serves the web side over HTTPS with a self-signed certificate (Fleet.ClientTLS trusts it).
	TLS bool
	// RebootDuration is how long both listeners stay down after reboot.cgi, on Clock. Default 60s.
	RebootDuration time.Duration
	// SlowByteDelay is the wall-clock pause between reply bytes under FaultSlow. Default 200ms.
	SlowByteDelay time.Duration
	// HugeBodyBytes is the reply size under FaultHugeBody. Default 64 MiB.
	HugeBodyBytes int64
	// RedirectURL is where FaultRedirect points, plus the request path. Default "http://redirect.invalid".
	RedirectURL string
	// ReadHeaderTimeout and IdleTimeout are the web servers' wall-clock limits. Defaults 5s and 30s.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// APISlowDelay is miners/sim's SlowDelay for API-side FaultSlow (wall clock). Default miners/sim's.
	APISlowDelay time.Duration
}

// Defaults; see Config.
const (
	DefaultCount             = 10
	DefaultHost              = "127.0.0.1"
	DefaultBaseIP            = "127.30.0.1"
	DefaultIDPrefix          = "ant-"
	DefaultUsername          = "root"
	DefaultPassword          = "root"
	DefaultRealm             = "antMiner Configuration"
	DefaultNonceTTL          = 5 * time.Minute
	DefaultRebootDuration    = 60 * time.Second
	DefaultSlowByteDelay     = 200 * time.Millisecond
	DefaultHugeBodyBytes     = 64 << 20
	DefaultRedirectURL       = "http://redirect.invalid"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second

	maxCount        = 20000
	maxRequestBytes = 64 << 10
	maxNonces       = 256 // per miner; the oldest are forgotten (then answered stale)
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{
		Count:             DefaultCount,
		Host:              DefaultHost,
		BaseIP:            DefaultBaseIP,
		Clock:             clock.Real(),
		IDPrefix:          DefaultIDPrefix,
		Username:          DefaultUsername,
		Password:          DefaultPassword,
		Realm:             DefaultRealm,
		DigestAlgorithms:  []string{"MD5"},
		NonceTTL:          DefaultNonceTTL,
		RebootDuration:    DefaultRebootDuration,
		SlowByteDelay:     DefaultSlowByteDelay,
		HugeBodyBytes:     DefaultHugeBodyBytes,
		RedirectURL:       DefaultRedirectURL,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		APISlowDelay:      sim.DefaultSlowDelay,
	}
}

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Count < 1 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("antweb: Count must be between 1 and %d, got %d", maxCount, c.Count))
	}
	if c.Port < 0 || c.Port > 65535 || c.APIPort < 0 || c.APIPort > 65535 {
		errs = append(errs, fmt.Errorf("antweb: Port and APIPort must be between 0 and 65535, got %d and %d", c.Port, c.APIPort))
	}
	if !c.PerMinerIP && c.Port != 0 && c.Port+c.Count-1 > 65535 {
		errs = append(errs, fmt.Errorf("antweb: Port %d + Count %d runs past port 65535", c.Port, c.Count))
	}
	if !c.PerMinerIP && c.APIPort != 0 && c.Count > 1 {
		errs = append(errs, fmt.Errorf("antweb: a fixed APIPort needs PerMinerIP with more than one miner"))
	}
	if c.PerMinerIP {
		a, err := netip.ParseAddr(c.BaseIP)
		last := uint32(0)
		if err == nil && a.Is4() {
			b := a.As4()
			last = uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(c.Count-1)
		}
		if err != nil || !a.Is4() || a.As4()[0] != 127 || last > 0xFFFFFF {
			errs = append(errs, fmt.Errorf("antweb: BaseIP must be an IPv4 address in 127.0.0.0/8 with room for %d miners, got %q", c.Count, c.BaseIP))
		}
	} else if _, err := netip.ParseAddr(c.Host); err != nil && c.Host != "localhost" {
		errs = append(errs, fmt.Errorf("antweb: Host must be an IP address or localhost, got %q", c.Host))
	}
	if c.Username == "" || c.Password == "" {
		errs = append(errs, errors.New("antweb: Username and Password must not be empty"))
	}
	if len(c.DigestAlgorithms) == 0 {
		errs = append(errs, errors.New("antweb: DigestAlgorithms must name at least one algorithm"))
	}
	for _, a := range c.DigestAlgorithms {
		if hashFor(a) == nil {
			errs = append(errs, fmt.Errorf("antweb: unknown digest algorithm %q (MD5, MD5-sess, SHA-256, SHA-256-sess)", a))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"NonceTTL", c.NonceTTL}, {"RebootDuration", c.RebootDuration}, {"SlowByteDelay", c.SlowByteDelay},
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"IdleTimeout", c.IdleTimeout}, {"APISlowDelay", c.APISlowDelay},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("antweb: %s must not be negative, got %v", d.name, d.v))
		}
	}
	if c.HugeBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("antweb: HugeBodyBytes must be at least 1 KiB, got %d", c.HugeBodyBytes))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Count == 0 {
		c.Count = d.Count
	}
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.BaseIP == "" {
		c.BaseIP = d.BaseIP
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.IDPrefix == "" {
		c.IDPrefix = d.IDPrefix
	}
	if c.Username == "" {
		c.Username = d.Username
	}
	if c.Password == "" {
		c.Password = d.Password
	}
	if c.Realm == "" {
		c.Realm = d.Realm
	}
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = d.DigestAlgorithms
	}
	if c.NonceTTL == 0 {
		c.NonceTTL = d.NonceTTL
	}
	if c.RebootDuration == 0 {
		c.RebootDuration = d.RebootDuration
	}
	if c.SlowByteDelay == 0 {
		c.SlowByteDelay = d.SlowByteDelay
	}
	if c.HugeBodyBytes == 0 {
		c.HugeBodyBytes = d.HugeBodyBytes
	}
	if c.RedirectURL == "" {
		c.RedirectURL = d.RedirectURL
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.APISlowDelay == 0 {
		c.APISlowDelay = d.APISlowDelay
	}
	return c
}
