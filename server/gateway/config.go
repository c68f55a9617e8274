package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// DefaultMaxRecvMsgSize bounds one frame from a node: 4 MiB (gRPC's own default, stated explicitly). A
// telemetry batch of 1,000 samples is well under 1 MiB.
const DefaultMaxRecvMsgSize = 4 << 20

// Config configures the gateway.
type Config struct {
	// Authenticator decides the node of each stream. Required: TrustNodeMetadata() in combined mode,
	// SessionAuthenticator(registry) in split mode.
	Authenticator Authenticator
	// Enrollment answers Enroll, Challenge and OpenSession. Nil: they answer Unimplemented (combined mode).
	Enrollment Enrollment
	// Sessions, when set, makes session tokens expire on open streams: a node's streams end when its newest
	// token (from the stream's metadata, or sent in a hello, heartbeat or batch) expires. Split mode sets it.
	Sessions SessionVerifier
	// RequireClientCert is mTLS: every stream, Challenge and OpenSession needs a client certificate the TLS
	// listener verified against the server's CA (tlsca.VerifyClientCertIfGiven) naming the node the call is
	// for (ClientCertNode); Enroll does not, as a node gets its certificate by enrolling. Default false.
	RequireClientCert bool
	// MaxRecvMsgSize bounds one frame in bytes; apply it with ServerOptions. Default 4 MiB.
	MaxRecvMsgSize int
	// HelloTimeout: a control stream whose first frame is not here by then is closed. Default 10s (wall
	// clock: it guards a socket, it decides nothing).
	HelloTimeout time.Duration
	// OutboundQueue is how many frames may wait for a slow node before its control stream is closed (it
	// reconnects and queued commands are re-sent). Default 1024.
	OutboundQueue int
	// DrainReconnectAfter is the reconnect_after_ms of the goaway sent at shutdown. Default 2s.
	DrainReconnectAfter time.Duration
	// DrainGrace: after the goaways, how long nodes get to close their upload and heartbeat streams
	// themselves before Drain ends them with Unavailable. Default 1s (wall clock).
	DrainGrace time.Duration
	// Hello, when set, sees every control stream's hello before the stream is attached; an error refuses the
	// stream (PermissionDenied). Split mode sets it to the registry's miner-key announcement check.
	Hello func(ctx context.Context, node string, hello *pb.ControlHello) error
	// Clock stamps heartbeats. Default the wall clock.
	Clock        clock.Clock
	Logger       *slog.Logger
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
}

// DefaultConfig returns the documented defaults; Authenticator must still be chosen.
func DefaultConfig() Config {
	return Config{MaxRecvMsgSize: DefaultMaxRecvMsgSize, HelloTimeout: 10 * time.Second, OutboundQueue: 1024,
		DrainReconnectAfter: 2 * time.Second, DrainGrace: time.Second, Clock: clock.Real()}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.Authenticator == nil {
		errs = append(errs, errors.New("gateway: no Authenticator (TrustNodeMetadata for combined mode, SessionAuthenticator in split mode)"))
	}
	if c.MaxRecvMsgSize < 64<<10 {
		errs = append(errs, fmt.Errorf("gateway: MaxRecvMsgSize %d is below 64 KiB", c.MaxRecvMsgSize))
	}
	if c.HelloTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway: HelloTimeout %s must be positive", c.HelloTimeout))
	}
	if c.OutboundQueue < 1 {
		errs = append(errs, fmt.Errorf("gateway: OutboundQueue %d must be at least 1", c.OutboundQueue))
	}
	if c.DrainGrace < 0 {
		errs = append(errs, fmt.Errorf("gateway: DrainGrace %s is negative", c.DrainGrace))
	}
	if c.DrainReconnectAfter < 0 {
		errs = append(errs, fmt.Errorf("gateway: DrainReconnectAfter %s is negative", c.DrainReconnectAfter))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("gateway: Clock is required"))
	}
	return errors.Join(errs...)
}

// ServerOptions are the grpc.Server options the gateway's contract needs: the frame size bound, a
// keepalive policy that lets nodes ping idle streams, and the proto codec that keeps telemetry samples'
// bytes (wireCodec). The bootstrap passes them to grpc.NewServer.
func ServerOptions(c Config) []grpc.ServerOption {
	size := c.MaxRecvMsgSize
	if size == 0 {
		size = DefaultMaxRecvMsgSize
	}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(size),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.ForceServerCodecV2(newWireCodec()),
	}
}
