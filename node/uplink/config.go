package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
)

// Config configures the Uplink.
type Config struct {
	// NodeID is sent as x-hashfleet-node metadata and in every message that has a node_id.
	NodeID string
	// Dial opens the connection to the cloud gateway: a bufconn dialer in combined mode, a TLS target in split
	// mode. It is called once per connection attempt; the Uplink closes what it returns.
	Dial func(ctx context.Context) (*grpc.ClientConn, error)
	// SessionToken returns the bearer token for the authorization metadata; nil or "" sends none (combined
	// mode on an in-process listener). Ignored when Authorize is set.
	SessionToken func() string
	// Authorize obtains a session on a freshly dialled connection (split mode: Challenge, sign with the
	// identity key, OpenSession with the api_key; see ProofOfPossession). The token goes in every stream's
	// metadata and frames; it is refreshed on the same connection once RefreshAt of its lifetime has passed,
	// and the new token is sent with the next heartbeat. Nil: SessionToken.
	Authorize func(ctx context.Context, conn *grpc.ClientConn) (Credential, error)
	// RefreshAt is the fraction of a session's lifetime after which it is refreshed. Default 0.6.
	RefreshAt float64
	// SoftwareVersion goes into the hello.
	SoftwareVersion string
	// MinerKey and MinerKeySignature go into the hello: the node's miner-signing public key and its identity
	// key's signature over signing.MinerKeyBytes(NodeID, MinerKey). Nil: none.
	MinerKey, MinerKeySignature []byte
	// Standby marks this node as the standby of a pair in the hello.
	Standby bool
	// Backoff is the reconnect policy.
	Backoff Backoff
	// HeartbeatInterval is the time between HeartbeatPings. Default 5s.
	HeartbeatInterval time.Duration
	// HeartbeatMisses is how many intervals without a pong make the link dead. Default 3.
	HeartbeatMisses int
	// HandshakeTimeout bounds dial + streams + hello → hello_ack. Default 10s.
	HandshakeTimeout time.Duration
	// ResultResendWindow: result reports written in the last ResultResendWindow before a session ended are
	// sent again on the next session, since a write that returned may still have been lost with the stream
	// (the cloud applies a result once). Default 30s.
	ResultResendWindow time.Duration
	// MaxPendingResults bounds acks and results kept while the link is down (beyond it the oldest acks are
	// dropped first; results are recovered anyway by the gate's DUPLICATE answer). Default 100,000.
	MaxPendingResults int
	// SendQueue is each stream's send queue length; a full queue means the stream is stalled. Default 1024.
	SendQueue int
}

// DefaultConfig returns the defaults documented on Config (NodeID and Dial are left for the caller).
func DefaultConfig() Config {
	return Config{
		Backoff:            DefaultBackoff(),
		HeartbeatInterval:  5 * time.Second,
		HeartbeatMisses:    3,
		HandshakeTimeout:   10 * time.Second,
		ResultResendWindow: 30 * time.Second,
		MaxPendingResults:  100_000,
		SendQueue:          1024,
		RefreshAt:          0.6,
	}
}

// Credential is a session: the bearer token and when it expires.
type Credential struct {
	Token   string
	Expires time.Time
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("uplink: node id is empty"))
	}
	if c.Dial == nil {
		errs = append(errs, fmt.Errorf("uplink: %w", ErrNoDial))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatMisses < 1 {
		errs = append(errs, fmt.Errorf("uplink: heartbeat every %s with %d misses allowed: both must be positive", c.HeartbeatInterval, c.HeartbeatMisses))
	}
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("uplink: handshake timeout %s must be positive", c.HandshakeTimeout))
	}
	if c.Authorize != nil && (c.RefreshAt <= 0 || c.RefreshAt >= 1) {
		errs = append(errs, fmt.Errorf("uplink: RefreshAt %v must be in (0, 1)", c.RefreshAt))
	}
	if c.ResultResendWindow < 0 || c.MaxPendingResults < 1 || c.SendQueue < 16 {
		errs = append(errs, fmt.Errorf("uplink: resend window %s ≥ 0, max pending results %d ≥ 1, send queue %d ≥ 16 required",
			c.ResultResendWindow, c.MaxPendingResults, c.SendQueue))
	}
	return errors.Join(errs...)
}
