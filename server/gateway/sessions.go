package gateway

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Enrollment answers the unary RPCs a node uses before it has a session (server/registry.Registry).
type Enrollment interface {
	Enroll(ctx context.Context, req *pb.EnrollRequest) (*pb.EnrollResponse, error)
	Challenge(ctx context.Context, req *pb.ChallengeRequest) (*pb.ChallengeResponse, error)
	OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.SessionToken, error)
}

// SessionVerifier checks a session token (server/registry.Registry): the node it was minted for, when it
// expires, or why it is refused (bad MAC, expired, node unknown, unconfirmed or revoked).
type SessionVerifier interface {
	VerifySession(ctx context.Context, token string) (nodeID string, expires time.Time, err error)
}

// SessionAuthenticator is split mode's authenticator: every stream carries "authorization: Bearer <session
// token>" and x-hashfleet-node naming the node the token was minted for.
func SessionAuthenticator(v SessionVerifier) Authenticator {
	return AuthenticatorFunc(func(ctx context.Context) (string, error) {
		return BearerAuthenticator(func(tok string) (string, error) {
			node, _, err := v.VerifySession(ctx, tok)
			return node, err
		}).Authenticate(ctx)
	})
}

// sessions remembers, per node, until when its newest verified session token is valid. A node's streams
// end when that time passes; a node keeps them open by refreshing its token before expiry and sending the
// new one in its heartbeats (and batches and hello), which the gateway verifies and records here.
type sessions struct {
	mu    sync.Mutex
	until map[string]time.Time
	last  map[string]string // newest token verified per node (avoids re-verifying every ping)
	// cut: nodes cut off (revoked) and why; watches: every open stream's watch by node (cut.go).
	cut     map[string]string
	watches map[string]map[*sessionWatch]struct{}
}

func newSessions() *sessions {
	return &sessions{until: map[string]time.Time{}, last: map[string]string{}}
}

func (s *sessions) extend(node, token string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, cut := s.cut[node]; cut {
		return
	}
	if t.After(s.until[node]) {
		s.until[node] = t
		s.last[node] = token
	}
}

func (s *sessions) validUntil(node string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.until[node]
}

func (s *sessions) known(node, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[node] == token
}

// bearer returns the session token of the stream's authorization metadata ("" when none).
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return ""
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return tok
}

// refresh verifies a token a node sent inside a frame (hello, ping, batch) and extends its session. An
// empty token changes nothing; a token that does not verify, or names another node, ends the stream.
func (g *Gateway) refresh(ctx context.Context, kind, node, token string) error {
	if g.cfg.Sessions == nil || token == "" || g.sess.known(node, token) {
		return nil
	}
	n, exp, err := g.cfg.Sessions.VerifySession(ctx, token)
	if err != nil {
		g.cfg.Metrics.reject(kind, "unauthenticated")
		return status.Errorf(codes.Unauthenticated, "session token in %s frame: %v", kind, err)
	}
	if n != node {
		g.cfg.Metrics.reject(kind, "unauthenticated")
		return status.Errorf(codes.Unauthenticated, "session token in %s frame is for node %q, stream is %q", kind, n, node)
	}
	g.sess.extend(node, token, exp)
	return nil
}

// watch returns a channel that fires when the node's session expires (nil without session checking) and a
// function that stops it. The stream handler calls expired when it fires.
func (g *Gateway) watch(ctx context.Context, node string) (*sessionWatch, error) {
	if g.cfg.Sessions == nil {
		return &sessionWatch{}, nil
	}
	tok := bearer(ctx)
	if err := g.refresh(ctx, "stream", node, tok); err != nil {
		return nil, err
	}
	w := &sessionWatch{g: g, node: node}
	w.arm()
	g.sess.track(w)
	if reason, cut := g.sess.cutReason(node); cut {
		w.stop()
		return nil, w.cutError("stream", reason)
	}
	return w, nil
}

type sessionWatch struct {
	g     *Gateway
	node  string
	timer clock.Timer
}

// C fires when the session may have expired (never for a watch without session checking).
func (w *sessionWatch) C() <-chan time.Time {
	if w.timer == nil {
		return nil
	}
	return w.timer.C()
}

func (w *sessionWatch) arm() {
	d := w.g.sess.validUntil(w.node).Sub(w.g.clk.Now())
	if w.timer == nil {
		w.timer = w.g.clk.NewTimer(max(d, 0))
		return
	}
	w.timer.Reset(max(d, 0))
}

// expired is called when C fires: the status that ends the stream if the session did expire, else nil
// after re-arming for the refreshed expiry.
func (w *sessionWatch) expired(kind string) error {
	if reason, cut := w.g.sess.cutReason(w.node); cut {
		return w.cutError(kind, reason)
	}
	until := w.g.sess.validUntil(w.node)
	if w.g.clk.Now().Before(until) {
		w.arm()
		return nil
	}
	w.g.cfg.Metrics.reject(kind, "session_expired")
	w.g.log.Warn("node session expired; ending stream", "node", w.node, "stream", kind, "expired_at", until)
	return status.Errorf(codes.Unauthenticated, "session expired at %s: open a new session", until.UTC().Format(time.RFC3339))
}

func (w *sessionWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
		w.g.sess.untrack(w)
	}
}

// Enroll implements pb.GatewayServer: Unimplemented without an Enrollment (combined mode).
func (g *Gateway) Enroll(ctx context.Context, req *pb.EnrollRequest) (*pb.EnrollResponse, error) {
	if g.cfg.Enrollment == nil {
		return nil, status.Error(codes.Unimplemented, "enrollment is not available on this server (combined mode)")
	}
	return g.cfg.Enrollment.Enroll(ctx, req)
}

// Challenge implements pb.GatewayServer.
func (g *Gateway) Challenge(ctx context.Context, req *pb.ChallengeRequest) (*pb.ChallengeResponse, error) {
	if g.cfg.Enrollment == nil {
		return nil, status.Error(codes.Unimplemented, "sessions are not available on this server (combined mode)")
	}
	if err := g.checkClientCert(ctx, "challenge", req.GetNodeId()); err != nil {
		return nil, err
	}
	return g.cfg.Enrollment.Challenge(ctx, req)
}

// OpenSession implements pb.GatewayServer.
func (g *Gateway) OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.SessionToken, error) {
	if g.cfg.Enrollment == nil {
		return nil, status.Error(codes.Unimplemented, "sessions are not available on this server (combined mode)")
	}
	if err := g.checkClientCert(ctx, "open_session", req.GetNodeId()); err != nil {
		return nil, err
	}
	tok, err := g.cfg.Enrollment.OpenSession(ctx, req)
	if err != nil {
		g.cfg.Metrics.reject("open_session", "unauthenticated")
		return nil, err
	}
	return tok, nil
}
