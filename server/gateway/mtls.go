package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ErrNoClientCert: mTLS is on and the connection has no verified client certificate naming the node.
var ErrNoClientCert = errors.New("client certificate required")

// ClientCertNode returns the node id of the verified client certificate of the call's connection: the TLS
// handshake verified it against the server's CA (tlsca.VerifyClientCertIfGiven or RequireClientCert), and
// it names the node (tlsca.NodeIDFromCert). It fails for a connection without TLS or without a certificate.
func ClientCertNode(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", ErrNoClientCert
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", ErrNoClientCert
	}
	id, err := tlsca.VerifiedNodeID(info.State)
	if err != nil {
		return "", errors.Join(ErrNoClientCert, err)
	}
	return id, nil
}

// checkClientCert enforces Config.RequireClientCert for a call made for node: the connection's verified
// client certificate must name exactly that node. Without RequireClientCert it allows everything.
func (g *Gateway) checkClientCert(ctx context.Context, kind, node string) error {
	if !g.cfg.RequireClientCert {
		return nil
	}
	certNode, err := ClientCertNode(ctx)
	switch {
	case err != nil:
		g.cfg.Metrics.reject(kind, "client_cert")
		g.log.Warn("refused: no verified client certificate (mTLS)", slog.String("call", kind), slog.String("node", node))
		return status.Errorf(codes.Unauthenticated,
			"%v: this gateway requires mTLS; present the client certificate issued at enrollment (enroll again if it has none or it expired)", ErrNoClientCert)
	case certNode != node:
		g.cfg.Metrics.reject(kind, "client_cert")
		g.log.Warn("refused: client certificate names another node (mTLS)", slog.String("call", kind),
			slog.String("node", node), slog.String("cert_node", certNode))
		return status.Errorf(codes.PermissionDenied, "client certificate is for node %q, the call is for %q", certNode, node)
	}
	return nil
}
