package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// mtlsConn dials the gateway over TLS pinned to the server's CA, presenting cert (none when nil). force
// presents it even where crypto/tls would not (a certificate of a CA the server does not name).
func (s *splitSite) mtlsConn(cert *tls.Certificate, force bool) *grpc.ClientConn {
	s.t.Helper()
	tc, err := tlsca.ClientTLSConfig(s.srv.CA.CAPEM())
	if err != nil {
		s.t.Fatal(err)
	}
	switch {
	case cert != nil && force:
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	case cert != nil:
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(s.srv.GatewayAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// clientCert is the client certificate a node enrolled in dataDir keeps.
func clientCert(t *testing.T, dataDir string) *tls.Certificate {
	t.Helper()
	c, err := identity.LoadClientCert(filepath.Join(dataDir, nodeIdentityDir))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// sessionOn opens a session for the node on conn the way the node does.
func sessionOn(conn *grpc.ClientConn, nodeID, apiKey string, id *identity.Identity) (string, error) {
	gw := pb.NewGatewayClient(conn)
	ch, err := gw.Challenge(context.Background(), &pb.ChallengeRequest{NodeId: nodeID})
	if err != nil {
		return "", err
	}
	tok, err := gw.OpenSession(context.Background(), &pb.OpenSessionRequest{NodeId: nodeID, ApiKey: apiKey, Nonce: ch.GetNonce(),
		Signature: id.SignChallenge(ch.GetNonce(), nodeID)})
	if err != nil {
		return "", err
	}
	return tok.GetToken(), nil
}

// openHeartbeat opens a Heartbeat stream on conn for node with token and returns the first error (nil when
// the gateway answers a ping).
func openHeartbeat(conn *grpc.ClientConn, node, token string) error {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", node,
		"authorization", "Bearer "+token), 5*time.Second)
	defer cancel()
	hb, err := pb.NewGatewayClient(conn).Heartbeat(ctx)
	if err != nil {
		return err
	}
	if err := hb.Send(&pb.HeartbeatPing{NodeId: node}); err != nil {
		_, err = hb.Recv()
		return err
	}
	_, err = hb.Recv()
	return err
}

// openControl opens a control stream on conn for node with token and returns the hello's answer error.
func openControl(conn *grpc.ClientConn, node, token string) error {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", node,
		"authorization", "Bearer "+token), 5*time.Second)
	defer cancel()
	ctl, err := pb.NewGatewayClient(conn).ControlStream(ctx)
	if err != nil {
		return err
	}
	if err := ctl.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: node, SessionToken: token}}}); err != nil {
		_, err = ctl.Recv()
		return err
	}
	_, err = ctl.Recv()
	return err
}

func wantCode(t *testing.T, what string, err error, code codes.Code, mention string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), mention) {
		t.Fatalf("%s: %v, want %s mentioning %q", what, err, code, mention)
	}
}

// With --gateway-mtls the node enrolls without a client certificate, receives one for its own TLS key, keeps
// it 0600 and presents it: telemetry reaches the cloud and a command runs, over real TLS on loopback.
func TestSplitMTLSEndToEnd(t *testing.T) {
	s := startSplit(t, splitOpts{mtls: true})
	idDir := filepath.Join(s.nodeDir, nodeIdentityDir)
	for _, f := range []string{identity.TLSKeyFile, identity.TLSCertFile} {
		fi, err := os.Stat(filepath.Join(idDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	cert := clientCert(t, s.nodeDir)
	if id, err := tlsca.NodeIDFromCert(cert.Leaf); err != nil || id != s.nodeID {
		t.Fatalf("client certificate names %q (%v), node is %s", id, err, s.nodeID)
	}
	if err := cert.Leaf.CheckSignatureFrom(s.srv.CA.CACertificate()); err != nil {
		t.Fatalf("client certificate not issued by the server's CA: %v", err)
	}
	// The TLS key is a key of its own (ECDSA P-256; the identity key is ed25519).
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("client certificate key is a %T", cert.PrivateKey)
	}
	// startSplit waited for the link and for every miner mining in the API (telemetry); now a command.
	before := s.writes()
	v := s.waitCommand(s.command("reboot", "sim-0"), "succeeded")
	if v.Status != "succeeded" || s.writes() <= before {
		t.Fatalf("command over mTLS: %+v, writes %d → %d", v, before, s.writes())
	}
	// A restarted node presents its stored certificate again.
	s.stopNode()
	s.startNode()
	s.waitCommand(s.command("reboot", "sim-1"), "succeeded")
}

// With --gateway-mtls a connection without a client certificate can enroll, and nothing else: Challenge,
// OpenSession and every stream are refused, even with a valid session token.
func TestSplitMTLSRefusesStreamWithoutClientCert(t *testing.T) {
	s := startSplit(t, splitOpts{mtls: true})
	id, err := identity.Load(filepath.Join(s.nodeDir, nodeIdentityDir))
	if err != nil {
		t.Fatal(err)
	}
	withCert := s.mtlsConn(clientCert(t, s.nodeDir), false)
	token, err := sessionOn(withCert, s.nodeID, s.node.Enrollment.APIKey, id)
	if err != nil {
		t.Fatalf("session with the client certificate: %v", err)
	}
	if err := openHeartbeat(withCert, s.nodeID, token); err != nil {
		t.Fatalf("heartbeat with the client certificate: %v", err)
	}

	bare := s.mtlsConn(nil, false)
	gw := pb.NewGatewayClient(bare)
	// Enroll is served (the code is bad, so PermissionDenied: the call reached the registry).
	fresh, err := identity.Create(filepath.Join(t.TempDir(), "identity"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Enroll(context.Background(), fresh.EnrollRequest("not-a-code", "x", "")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Enroll without a client certificate: %v, want it served (PermissionDenied for a bad code)", err)
	}
	_, err = gw.Challenge(context.Background(), &pb.ChallengeRequest{NodeId: s.nodeID})
	wantCode(t, "Challenge without a client certificate", err, codes.Unauthenticated, "client certificate required")
	_, err = gw.OpenSession(context.Background(), &pb.OpenSessionRequest{NodeId: s.nodeID, ApiKey: s.node.Enrollment.APIKey})
	wantCode(t, "OpenSession without a client certificate", err, codes.Unauthenticated, "client certificate required")
	wantCode(t, "heartbeat stream without a client certificate", openHeartbeat(bare, s.nodeID, token), codes.Unauthenticated, "client certificate required")
	wantCode(t, "control stream without a client certificate", openControl(bare, s.nodeID, token), codes.Unauthenticated, "client certificate required")

	// The node itself was never disturbed.
	if !s.link().Up {
		t.Fatal("node link down")
	}
	s.waitCommand(s.command("reboot", "sim-2"), "succeeded")
}

// A client certificate for node A cannot be used with node B's session, nor to open one for B.
func TestSplitMTLSRefusesCertOfAnotherNode(t *testing.T) {
	s := startSplit(t, splitOpts{mtls: true, miners: 1})
	b := s.enrollSecondNode()
	certA, certB := clientCert(t, s.nodeDir), clientCert(t, b.dir)
	connA, connB := s.mtlsConn(certA, false), s.mtlsConn(certB, false)

	tokenB, err := sessionOn(connB, b.nodeID, b.apiKey, b.id)
	if err != nil {
		t.Fatalf("B's session with B's certificate: %v", err)
	}
	if err := openHeartbeat(connB, b.nodeID, tokenB); err != nil {
		t.Fatalf("B's stream with B's certificate: %v", err)
	}
	// B's token and B's node id on A's certificate.
	wantCode(t, "B's session on A's certificate (heartbeat)", openHeartbeat(connA, b.nodeID, tokenB), codes.PermissionDenied, "client certificate is for node")
	wantCode(t, "B's session on A's certificate (control)", openControl(connA, b.nodeID, tokenB), codes.PermissionDenied, "client certificate is for node")
	// B's token claimed as A's stream on A's certificate: the token names B.
	wantCode(t, "B's token as A on A's certificate", openHeartbeat(connA, s.nodeID, tokenB), codes.Unauthenticated, "session token is for node")
	// Opening a session for B on A's certificate, even with B's api_key and identity key.
	_, err = sessionOn(connA, b.nodeID, b.apiKey, b.id)
	wantCode(t, "B's Challenge on A's certificate", err, codes.PermissionDenied, "client certificate is for node")
	ch, err := pb.NewGatewayClient(connB).Challenge(context.Background(), &pb.ChallengeRequest{NodeId: b.nodeID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pb.NewGatewayClient(connA).OpenSession(context.Background(), &pb.OpenSessionRequest{NodeId: b.nodeID, ApiKey: b.apiKey,
		Nonce: ch.GetNonce(), Signature: b.id.SignChallenge(ch.GetNonce(), b.nodeID)})
	wantCode(t, "B's OpenSession on A's certificate", err, codes.PermissionDenied, "client certificate is for node")
}

// A client certificate from another CA, even naming the right node, is refused: crypto/tls does not offer
// it (the server names its own CA), and one forced onto the handshake fails it.
func TestSplitMTLSRefusesCertOfAnotherCA(t *testing.T) {
	s := startSplit(t, splitOpts{mtls: true, miners: 1})
	other, err := tlsca.LoadOrCreate(tlsca.DefaultConfig(filepath.Join(t.TempDir(), "tls")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, err := other.IssueClientCert(s.nodeID, &key.PublicKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	forged := &tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: key}
	id, err := identity.Load(filepath.Join(s.nodeDir, nodeIdentityDir))
	if err != nil {
		t.Fatal(err)
	}
	// A real session token, so only the certificate is wrong.
	token, err := sessionOn(s.mtlsConn(clientCert(t, s.nodeDir), false), s.nodeID, s.node.Enrollment.APIKey, id)
	if err != nil {
		t.Fatal(err)
	}

	offered := s.mtlsConn(forged, false)
	wantCode(t, "stream with another CA's certificate (not offered)", openHeartbeat(offered, s.nodeID, token), codes.Unauthenticated, "client certificate required")

	forced := s.mtlsConn(forged, true)
	err = openHeartbeat(forced, s.nodeID, token)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("stream with another CA's certificate forced onto the handshake: %v, want Unavailable (handshake refused)", err)
	}
	_, err = pb.NewGatewayClient(forced).Challenge(context.Background(), &pb.ChallengeRequest{NodeId: s.nodeID})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Challenge with another CA's certificate forced: %v, want Unavailable", err)
	}
	if !s.link().Up {
		t.Fatal("node link down")
	}
}

// Without --gateway-mtls everything works as before (the rest of the split tests run that way): a stream with
// no client certificate is served. The node still receives and keeps its certificate, so mTLS can be turned
// on later without enrolling again, and presenting it does no harm.
func TestSplitWithoutMTLSServesCertlessNodes(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 1})
	token, _, err := s.sessionNow() // over a connection without a client certificate
	if err != nil {
		t.Fatalf("session without a client certificate, mTLS off: %v", err)
	}
	if err := openHeartbeat(s.mtlsConn(nil, false), s.nodeID, token); err != nil {
		t.Fatalf("stream without a client certificate, mTLS off: %v", err)
	}
	cert := clientCert(t, s.nodeDir)
	if err := openHeartbeat(s.mtlsConn(cert, false), s.nodeID, token); err != nil {
		t.Fatalf("stream with the client certificate, mTLS off: %v", err)
	}

	// The same data directory, server restarted with --gateway-mtls: the node reconnects with its certificate.
	s.stopNode()
	s.stopServer()
	s.srvOpts.GatewayMTLS = true
	s.startServer()
	s.startNode()
	s.waitCommand(s.command("reboot", "sim-0"), "succeeded")
	wantCode(t, "stream without a client certificate, mTLS on", openHeartbeat(s.mtlsConn(nil, false), s.nodeID, token),
		codes.Unauthenticated, "client certificate required")
}

func TestSplitMTLSNeedsTLS(t *testing.T) {
	o := ServerOptions{AdminToken: testToken, GatewayListen: "127.0.0.1:0", Listen: "127.0.0.1:0", InsecureLoopback: true, GatewayMTLS: true}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--gateway-mtls") {
		t.Fatalf("Validate(--gateway-mtls --insecure-loopback) = %v", err)
	}
}
