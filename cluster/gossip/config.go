package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config configures one member of a pair's gossip. The defaults are tuned for two members on one LAN; see
// the package documentation for the detection-time formula.
type Config struct {
	// NodeName is this member's unique name: the node id. Required.
	NodeName string
	// BindAddr is the IP to listen on (UDP and TCP). Default "0.0.0.0".
	BindAddr string
	// BindPort is the port for both UDP and TCP. Default 7946; 0 picks a free port (tests).
	BindPort int
	// AdvertiseAddr is the IP the peer should reach this member at. Default: the bound address, or the
	// first private IP when bound to all interfaces.
	AdvertiseAddr string
	// Peers are "host:port" addresses of the other member(s) to join.
	Peers []string
	// SecretKey is the pair key (AES-128/192/256: 16, 24 or 32 bytes), distributed by the cloud. Required:
	// gossip on a customer LAN is always encrypted, and a member without the key cannot join.
	SecretKey []byte
	// ProbeInterval (PI) is how often the peer is probed. Default 500ms (memberlist LAN: 1s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a UDP ping waits for its ack before the TCP fallback. Default 200ms: two
	// orders of magnitude above a LAN round trip. Must be below ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult (SM): a suspected peer is declared dead after SM × PI unless it refutes. Default 3
	// (memberlist LAN: 4). Dead peers are detected in (1+SM)·PI to (2+SM)·PI: 2.0–2.5s by default.
	SuspicionMult int
	// GossipInterval is how often queued updates (suspicions, metadata) are gossiped. Default 100ms
	// (memberlist LAN: 200ms), so a metadata change reaches the peer within about 100ms.
	GossipInterval time.Duration
	// PushPullInterval is how often the full state is exchanged over TCP. Default 5s (memberlist LAN: 30s);
	// with two members it is one small exchange.
	PushPullInterval time.Duration
	// TCPTimeout bounds a TCP connect/exchange (join, push/pull). Default 2s (memberlist LAN: 10s).
	TCPTimeout time.Duration
	// DeadNodeReclaimTime is how long a dead member's name stays bound to its old address; after it, the
	// same name may come back at another address (a restart on a new port or IP). Default 1s. memberlist's
	// default, 0, never allows it.
	DeadNodeReclaimTime time.Duration
	// LeaveTimeout bounds the goodbye broadcast of Stop. Default 1s.
	LeaveTimeout time.Duration
	// RejoinInterval is how often the member tries to join its known peers while alone. Default 1s.
	RejoinInterval time.Duration
	// StartupRejoinWindow: for this long after Start the member re-joins every RejoinInterval even when not
	// alone, so a peer that still holds its old address accepts the new one once DeadNodeReclaimTime
	// passed. Default 10s.
	StartupRejoinWindow time.Duration
	// PeersFile persists the addresses of peers seen alive, so a restarted member rejoins them. "" keeps
	// them in memory only.
	PeersFile string
	// Meta is this member's initial metadata (at most MaxMeta = 511 bytes); change it with SetMeta.
	Meta []byte
	// Events receives every peer state change. Nil drops them (Members and PeerAlive still work).
	Events Sink
	// Metrics records the gossip series (nil: none).
	Metrics *Metrics
	// Logger receives memberlist's log (its DEBUG lines at debug level) and ours. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config (NodeName, Peers and SecretKey are left empty).
func DefaultConfig() Config {
	return Config{
		BindAddr:            "0.0.0.0",
		BindPort:            7946,
		ProbeInterval:       500 * time.Millisecond,
		ProbeTimeout:        200 * time.Millisecond,
		SuspicionMult:       3,
		GossipInterval:      100 * time.Millisecond,
		PushPullInterval:    5 * time.Second,
		TCPTimeout:          2 * time.Second,
		DeadNodeReclaimTime: time.Second,
		LeaveTimeout:        time.Second,
		RejoinInterval:      time.Second,
		StartupRejoinWindow: 10 * time.Second,
	}
}

// DetectionBounds returns the shortest and longest time after which a crashed peer is declared dead.
func (c Config) DetectionBounds() (lo, hi time.Duration) {
	sm := time.Duration(c.SuspicionMult)
	return (1 + sm) * c.ProbeInterval, (2 + sm) * c.ProbeInterval
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("gossip: "+format, a...)) }
	if c.NodeName == "" {
		add("node name is empty")
	}
	if net.ParseIP(c.BindAddr) == nil {
		add("bind address %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		add("advertise address %q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		add("bind port %d is out of range", c.BindPort)
	}
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			add("peer %q is not host:port: %v", p, err)
		}
	}
	switch len(c.SecretKey) {
	case 16, 24, 32:
	case 0:
		add("the pair key is missing: gossip is always encrypted")
	default:
		add("the pair key is %d bytes; it must be 16, 24 or 32", len(c.SecretKey))
	}
	if c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.ProbeInterval {
		add("probe timeout %s must be positive and below the probe interval %s", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		add("suspicion multiplier %d must be at least 1", c.SuspicionMult)
	}
	for name, d := range map[string]time.Duration{"gossip interval": c.GossipInterval, "push/pull interval": c.PushPullInterval,
		"tcp timeout": c.TCPTimeout, "dead node reclaim time": c.DeadNodeReclaimTime, "leave timeout": c.LeaveTimeout,
		"rejoin interval": c.RejoinInterval} {
		if d <= 0 {
			add("%s %s must be positive", name, d)
		}
	}
	if c.StartupRejoinWindow < 0 {
		add("startup rejoin window %s is negative", c.StartupRejoinWindow)
	}
	if len(c.Meta) > MaxMeta {
		add("%w: %d bytes, at most %d", ErrMetaTooLarge, len(c.Meta), MaxMeta)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
