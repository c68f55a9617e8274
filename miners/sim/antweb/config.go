package antweb

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
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
	DefaultCount             = httpsim.DefaultCount
	DefaultHost              = httpsim.DefaultHost
	DefaultBaseIP            = "127.30.0.1"
	DefaultIDPrefix          = "ant-"
	DefaultUsername          = "root"
	DefaultPassword          = "root"
	DefaultRealm             = "antMiner Configuration"
	DefaultNonceTTL          = 5 * time.Minute
	DefaultRebootDuration    = 60 * time.Second
	DefaultSlowByteDelay     = httpsim.DefaultSlowByteDelay
	DefaultHugeBodyBytes     = httpsim.DefaultHugeBodyBytes
	DefaultRedirectURL       = httpsim.DefaultRedirectURL
	DefaultReadHeaderTimeout = httpsim.DefaultReadHeaderTimeout
	DefaultIdleTimeout       = httpsim.DefaultIdleTimeout

	maxNonces = 256 // per miner; the oldest are forgotten (then answered stale)
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	c = c.withDefaults()
	var own []error
	if c.APIPort < 0 || c.APIPort > 65535 {
		own = append(own, fmt.Errorf("antweb: APIPort must be between 0 and 65535, got %d", c.APIPort))
	}
	if !c.PerMinerIP && c.APIPort != 0 && c.Count > 1 {
		own = append(own, fmt.Errorf("antweb: a fixed APIPort needs PerMinerIP with more than one miner"))
	}
	if c.Username == "" || c.Password == "" {
		own = append(own, errors.New("antweb: Username and Password must not be empty"))
	}
	if len(c.DigestAlgorithms) == 0 {
		own = append(own, errors.New("antweb: DigestAlgorithms must name at least one algorithm"))
	}
	for _, a := range c.DigestAlgorithms {
		if hashFor(a) == nil {
			own = append(own, fmt.Errorf("antweb: unknown digest algorithm %q (MD5, MD5-sess, SHA-256, SHA-256-sess)", a))
		}
	}
	return c.web().Validate(own, httpsim.Duration{Name: "NonceTTL", Value: c.NonceTTL},
		httpsim.Duration{Name: "APISlowDelay", Value: c.APISlowDelay})
}

// web is the part of the configuration the web side shares with the other HTTP simulators.
func (c Config) web() httpsim.Config {
	return httpsim.Config{Name: "antweb", Count: c.Count, Host: c.Host, Port: c.Port, PerMinerIP: c.PerMinerIP,
		BaseIP: c.BaseIP, Clock: c.Clock, IDPrefix: c.IDPrefix, TLS: c.TLS, RebootDuration: c.RebootDuration,
		SlowByteDelay: c.SlowByteDelay, HugeBodyBytes: c.HugeBodyBytes, RedirectURL: c.RedirectURL,
		ReadHeaderTimeout: c.ReadHeaderTimeout, IdleTimeout: c.IdleTimeout}
}

func (c Config) withDefaults() Config {
	c.Username, c.Password, c.Realm = cmp.Or(c.Username, DefaultUsername), cmp.Or(c.Password, DefaultPassword), cmp.Or(c.Realm, DefaultRealm)
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = []string{"MD5"}
	}
	c.NonceTTL, c.APISlowDelay = cmp.Or(c.NonceTTL, DefaultNonceTTL), cmp.Or(c.APISlowDelay, sim.DefaultSlowDelay)
	w := c.web().WithDefaults(DefaultBaseIP, DefaultIDPrefix, DefaultRebootDuration)
	c.Count, c.Host, c.BaseIP, c.Clock, c.IDPrefix = w.Count, w.Host, w.BaseIP, w.Clock, w.IDPrefix
	c.RebootDuration, c.SlowByteDelay, c.HugeBodyBytes, c.RedirectURL = w.RebootDuration, w.SlowByteDelay, w.HugeBodyBytes, w.RedirectURL
	c.ReadHeaderTimeout, c.IdleTimeout = w.ReadHeaderTimeout, w.IdleTimeout
	return c
}
