package discovery

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Config tunes a Scanner and the DiscoveryActor. Zero fields take the defaults below.
type Config struct {
	// Concurrency is how many addresses are probed at once. Each address opens at most one connection per
	// configured port at a time, and a scan keeps at most Concurrency idle HTTP connections, so open sockets
	// stay below Concurrency × (ports per address + 1): about 1,000 at the default of 256 (Go raises the
	// process's soft descriptor limit to the hard limit at start).
	Concurrency int
	// ProbeTimeout bounds one probe, wall clock: connect, request and the whole reply of one protocol on one
	// port (an HTTP probe that needs two requests gets it twice). Default 1.5s. A silent address costs one
	// ProbeTimeout, its probes running in parallel.
	ProbeTimeout time.Duration
	// MaxAddresses is the most distinct addresses one scan may cover. Default 65,536; at most 1<<24.
	MaxAddresses int
	// AllowPublic admits public and link-local targets; see Limits.
	AllowPublic bool
	// MaxReplyBytes bounds every reply read during discovery; a larger one is hostile. Default 64 KiB (a CGMiner
	// version+stats reply of a 3-board miner is under 8 KiB).
	MaxReplyBytes int64
	// Ports are the ports probed per protocol when a scan does not give its own. Defaults: CGMiner 4028,
	// Antminer web 80, Proto rig 80 and 443, TLS on 443.
	Ports Ports
	// TLS is the client configuration of probes on Ports.TLS. Default: certificates are not verified, since
	// discovery only reads what a device says about itself and miners ship self-signed certificates; the
	// operator confirms every device before it is trusted, and the drivers verify as configured.
	TLS *tls.Config
	// ProgressInterval is the least time between two progress reports of one scan, on Clock. Default 250ms.
	// The first and the last report are always sent.
	ProgressInterval time.Duration
	// MaxActiveScans is how many scans the DiscoveryActor runs at once; another StartScan gets ErrBusy.
	// Default 1.
	MaxActiveScans int
	// KeepScans is how many scans (running or finished) the DiscoveryActor remembers for status requests;
	// the oldest finished scan is forgotten first. Default 16.
	KeepScans int
	// Clock stamps scans and paces progress reports. Default clock.Real(). Probe deadlines are wall clock, as
	// sockets are.
	Clock clock.Clock
	// Logger receives scan summaries and one line per hostile reply. Default slog.Default().
	Logger *slog.Logger
	// Metrics records probes and scans; nil records nothing.
	Metrics *Metrics
}

// Ports are the ports probed per protocol. An empty list means the default for that protocol.
type Ports struct {
	// CGMiner: the CGMiner API (TCP, one JSON request per connection). Default [4028].
	CGMiner []int
	// AntminerWeb: the Antminer web CGI (HTTP digest). Default [80].
	AntminerWeb []int
	// Proto: the Proto rig MDK REST API. Default [80, 443].
	Proto []int
	// TLS: which of the web ports above speak HTTPS. Default [443].
	TLS []int
}

// Credentials are the Antminer web CGI's digest credentials, used to read get_system_info.cgi (serial, MAC,
// model). Without them an Antminer is recognised by its digest challenge and identified from its CGMiner API
// only (no MAC).
type Credentials struct {
	Username string
	Password string
}

// Defaults; see Config and Ports.
const (
	DefaultConcurrency      = 256
	DefaultProbeTimeout     = 1500 * time.Millisecond
	DefaultMaxAddresses     = 65536
	DefaultMaxReplyBytes    = 64 << 10
	DefaultProgressInterval = 250 * time.Millisecond
	DefaultMaxActiveScans   = 1
	DefaultKeepScans        = 16

	maxConcurrency  = 16384
	maxMaxAddresses = 1 << 24
	maxPortsPerKind = 8
)

// DefaultPorts returns the ports of stock firmware.
func DefaultPorts() Ports {
	return Ports{CGMiner: []int{4028}, AntminerWeb: []int{80}, Proto: []int{80, 443}, TLS: []int{443}}
}

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{
		Concurrency:      DefaultConcurrency,
		ProbeTimeout:     DefaultProbeTimeout,
		MaxAddresses:     DefaultMaxAddresses,
		MaxReplyBytes:    DefaultMaxReplyBytes,
		Ports:            DefaultPorts(),
		ProgressInterval: DefaultProgressInterval,
		MaxActiveScans:   DefaultMaxActiveScans,
		KeepScans:        DefaultKeepScans,
		Clock:            clock.Real(),
		Logger:           slog.Default(),
	}
}

// Validate reports settings an operator must fix. Zero fields are valid: they take the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("discovery: Concurrency must be between 1 and %d, got %d", maxConcurrency, c.Concurrency))
	}
	if c.ProbeTimeout < 0 || c.ProbeTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("discovery: ProbeTimeout must be positive and at most 1m, got %v", c.ProbeTimeout))
	}
	if c.MaxAddresses < 0 || c.MaxAddresses > maxMaxAddresses {
		errs = append(errs, fmt.Errorf("discovery: MaxAddresses must be between 1 and %d, got %d", maxMaxAddresses, c.MaxAddresses))
	}
	if c.MaxReplyBytes != 0 && (c.MaxReplyBytes < 4<<10 || c.MaxReplyBytes > 16<<20) {
		errs = append(errs, fmt.Errorf("discovery: MaxReplyBytes must be between 4 KiB and 16 MiB, got %d", c.MaxReplyBytes))
	}
	if c.ProgressInterval < 0 {
		errs = append(errs, fmt.Errorf("discovery: ProgressInterval must not be negative, got %v", c.ProgressInterval))
	}
	if c.MaxActiveScans < 0 || c.KeepScans < 0 {
		errs = append(errs, fmt.Errorf("discovery: MaxActiveScans and KeepScans must not be negative, got %d and %d", c.MaxActiveScans, c.KeepScans))
	}
	if c.MaxActiveScans > 0 && c.KeepScans > 0 && c.KeepScans < c.MaxActiveScans {
		errs = append(errs, fmt.Errorf("discovery: KeepScans (%d) must be at least MaxActiveScans (%d)", c.KeepScans, c.MaxActiveScans))
	}
	if err := c.Ports.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = d.ProbeTimeout
	}
	if c.MaxAddresses == 0 {
		c.MaxAddresses = d.MaxAddresses
	}
	if c.MaxReplyBytes == 0 {
		c.MaxReplyBytes = d.MaxReplyBytes
	}
	c.Ports = c.Ports.withDefaults(d.Ports)
	if c.ProgressInterval == 0 {
		c.ProgressInterval = d.ProgressInterval
	}
	if c.MaxActiveScans == 0 {
		c.MaxActiveScans = d.MaxActiveScans
	}
	if c.KeepScans == 0 {
		c.KeepScans = max(d.KeepScans, c.MaxActiveScans)
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Validate reports ports outside 1-65535 and overlong lists.
func (p Ports) Validate() error {
	var errs []error
	for _, l := range []struct {
		name  string
		ports []int
	}{{"CGMiner", p.CGMiner}, {"AntminerWeb", p.AntminerWeb}, {"Proto", p.Proto}, {"TLS", p.TLS}} {
		if len(l.ports) > maxPortsPerKind {
			errs = append(errs, fmt.Errorf("discovery: at most %d %s ports, got %d", maxPortsPerKind, l.name, len(l.ports)))
		}
		for _, port := range l.ports {
			if port < 1 || port > 65535 {
				errs = append(errs, fmt.Errorf("discovery: %s port %d is not between 1 and 65535", l.name, port))
			}
		}
	}
	return errors.Join(errs...)
}

// withDefaults fills each empty list from def and removes duplicates.
func (p Ports) withDefaults(def Ports) Ports {
	pick := func(v, d []int) []int {
		if len(v) == 0 {
			v = d
		}
		out := make([]int, 0, len(v))
		for _, x := range v {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		return out
	}
	return Ports{CGMiner: pick(p.CGMiner, def.CGMiner), AntminerWeb: pick(p.AntminerWeb, def.AntminerWeb),
		Proto: pick(p.Proto, def.Proto), TLS: pick(p.TLS, def.TLS)}
}

// Request is one scan as an operator asks for it.
type Request struct {
	// ScanID names the scan in progress reports and status requests. Required by the DiscoveryActor (it
	// makes one up when empty); free-form for Scanner.Scan.
	ScanID string
	// Targets are the operator's entries; see ParseTargets.
	Targets []string
	// Ports override Config.Ports per protocol; empty lists keep the configured ones.
	Ports Ports
	// Protocols are the kinds looked for. Empty: all three. A CGMiner API on an Antminer is reported as
	// PROTOCOL_ANTMINER when ANTMINER is asked for and its web CGI answers, else as PROTOCOL_CGMINER.
	Protocols []pb.Protocol
	// Antminer are the web CGI credentials used to read serial and MAC; optional.
	Antminer Credentials
}

// wants reports whether p is asked for.
func (r *Request) wants(p pb.Protocol) bool {
	return len(r.Protocols) == 0 || slices.Contains(r.Protocols, p)
}

func (r *Request) validate() error {
	var errs []error
	for _, p := range r.Protocols {
		switch p {
		case pb.Protocol_PROTOCOL_CGMINER, pb.Protocol_PROTOCOL_ANTMINER, pb.Protocol_PROTOCOL_PROTO, pb.Protocol_PROTOCOL_WHATSMINER:
		default:
			errs = append(errs, fmt.Errorf("protocol %v cannot be discovered: %w", p, ErrBadRequest))
		}
	}
	if err := r.Ports.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	if len(r.ScanID) > 128 {
		errs = append(errs, fmt.Errorf("scan id longer than 128 bytes: %w", ErrBadRequest))
	}
	if (r.Antminer.Username == "") != (r.Antminer.Password == "") {
		errs = append(errs, fmt.Errorf("web credentials for Antminers need both a username and a password: %w", ErrBadRequest))
	}
	return errors.Join(errs...)
}
