package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultGatewayListen is where `hashfleet server` accepts node connections unless told otherwise.
const DefaultGatewayListen = "127.0.0.1:7443"

// ServerOptions configures split mode's cloud server: `hashfleet server`.
//
//	<DataDir>/store   Badger: devices, telemetry, commands, node records, enrollment codes, server secret
//	<DataDir>/keys    0600: the org's command-issuance keys
//	<DataDir>/tls     0600: the server's own CA and certificate (nodes pin the CA)
//	<DataDir>/artifacts  firmware images and log bundles, content-addressed (server/artifacts)
type ServerOptions struct {
	// DataDir holds everything the server keeps. "" keeps it in memory (tests only).
	DataDir string
	// Listen is the API and UI address. Default 127.0.0.1:8080.
	Listen string
	// GatewayListen is the gRPC address nodes dial. Default 127.0.0.1:7443; ":0" picks a free port.
	GatewayListen string
	// AdminToken is the API bearer token. Required.
	AdminToken string
	// TLSHosts are the names and IPs the gateway certificate is valid for (what nodes dial). Default
	// localhost, 127.0.0.1, ::1.
	TLSHosts []string
	// InsecureLoopback serves the gateway without TLS. Refused unless GatewayListen is a loopback address.
	InsecureLoopback bool
	// GatewayMTLS requires mTLS on the gateway: every stream, Challenge and OpenSession needs the client
	// certificate the node received at enrollment (issued by the server's CA, naming the node); only Enroll
	// is served without one. Nodes enrolled with TLS always get a certificate, so it can be turned on later.
	GatewayMTLS bool
	// DebugInject enables POST /api/v1/nodes/{id}/inject (see server.Config.DebugInject).
	DebugInject bool
	// DebugIngestLog, when set, appends every telemetry and event batch received and every ack sent to this
	// file, one JSON line each (ingest_journal.go): the witness the kill -9 tests check. Tests only.
	DebugIngestLog string
	// SessionTTL is a node session's lifetime. Default 1h.
	SessionTTL time.Duration
	// DrainReconnectAfter is what the shutdown goaway tells nodes to wait. Default 2s.
	DrainReconnectAfter time.Duration
	Clock               clock.Clock
	Logger              *slog.Logger
	Registry            *prometheus.Registry
	// Metrics configures the metrics and health server (observability.go); nil: none.
	Metrics *MetricsConfig
	// Cluster, when set, also makes this process a member of a multi-member cloud (cluster_member.go).
	Cluster *ClusterOptions
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.GatewayListen == "" {
		o.GatewayListen = DefaultGatewayListen
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = NewRegistry()
	}
	return o
}

// Validate reports what an operator must fix.
func (o ServerOptions) Validate() error {
	var errs []error
	if o.AdminToken == "" {
		errs = append(errs, errors.New("server: admin token is empty"))
	}
	host, _, err := net.SplitHostPort(o.GatewayListen)
	if err != nil {
		errs = append(errs, fmt.Errorf("server: --gateway-listen %q: %w", o.GatewayListen, err))
	} else if o.InsecureLoopback && !isLoopbackHost(host) {
		errs = append(errs, fmt.Errorf("server: --insecure-loopback serves the gateway without TLS and is only allowed on a loopback address, not %q", o.GatewayListen))
	}
	if o.GatewayMTLS && o.InsecureLoopback {
		errs = append(errs, errors.New("server: --gateway-mtls needs TLS; it cannot be combined with --insecure-loopback"))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("server: --listen %q: %w", o.Listen, err))
	}
	if err := validateMetrics(o.Metrics); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ServerProcess is a running split-mode server.
type ServerProcess struct {
	Server *server.Server
	// HTTPAddr and GatewayAddr are the bound addresses (real ports when :0 was asked).
	HTTPAddr, GatewayAddr string
	// CA is the gateway's certificate authority (nil with InsecureLoopback).
	CA  *tlsca.CA
	app *fx.App
	obs *observability
}

// URL is the operator UI's address.
func (p *ServerProcess) URL() string { return "http://" + p.HTTPAddr + "/" }

// Stop drains every node stream (ControlGoaway), then stops the gateway, the actors and the store.
func (p *ServerProcess) Stop(ctx context.Context) error { return p.app.Stop(ctx) }

func (o ServerOptions) env() processEnv {
	return processEnv{Clock: o.Clock, Logger: o.Logger, Registry: o.Registry}
}

// StartServer starts split mode's cloud server and returns once it serves the API and the gateway.
func StartServer(ctx context.Context, opts ServerOptions) (*ServerProcess, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &ServerProcess{}
	app := fx.New(
		fxLogger(opts.Logger),
		observe(opts.Metrics),
		fx.Supply(opts, opts.env()),
		fx.Invoke(serverChecks),
		fx.Populate(&p.obs),
		fx.Provide(newActorRuntime, newGatewayCA, newSplitServer, newSplitGateway, newSplitHTTP),
		fx.Invoke(func(s *server.Server, g *splitGateway, h *httpServer) {
			p.Server, p.GatewayAddr, p.CA, p.HTTPAddr = s, g.addr, g.ca, h.addr
		}),
	)
	if err := app.Start(ctx); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	p.app = app
	return p, nil
}

func newSplitServer(lc fx.Lifecycle, o ServerOptions, rt *actorRuntime, gca *gatewayCA) (*server.Server, error) {
	cfg := serverConfig(o.env(), rt, "")
	if gca.ca != nil {
		cfg.IssueClientCert = gca.ca.IssueClientCert
	}
	cfg.RequireClientCert = o.GatewayMTLS
	cfg.DataDir = subdir(o.DataDir, "store")
	cfg.KeysDir = subdir(o.DataDir, "keys")
	cfg.ArtifactsDir = subdir(o.DataDir, "artifacts")
	cfg.AdminToken = o.AdminToken
	cfg.Combined = false
	cfg.DebugInject = o.DebugInject
	cfg.SessionTTL = o.SessionTTL
	if o.DrainReconnectAfter > 0 {
		cfg.DrainReconnectAfter = o.DrainReconnectAfter
	}
	return startServer(lc, cfg)
}

type splitGateway struct {
	addr string
	ca   *tlsca.CA
}

// gatewayCA is the gateway's certificate authority: nil with InsecureLoopback.
type gatewayCA struct{ ca *tlsca.CA }

// newGatewayCA loads the server's own CA from DataDir/tls, making it at first start. The server issues
// nodes' client certificates with it and the gateway serves TLS with it.
func newGatewayCA(o ServerOptions) (*gatewayCA, error) {
	if o.InsecureLoopback {
		return &gatewayCA{}, nil
	}
	dir := subdir(o.DataDir, "tls")
	if dir == "" {
		return nil, errors.New("server: the gateway's TLS certificate authority needs a data directory (or --insecure-loopback)")
	}
	cfg := tlsca.DefaultConfig(dir)
	if len(o.TLSHosts) > 0 {
		cfg.Hosts = o.TLSHosts
	}
	ca, err := tlsca.LoadOrCreate(cfg, o.Clock.Now())
	if err != nil {
		return nil, err
	}
	return &gatewayCA{ca: ca}, nil
}

// newSplitGateway serves the gateway on a TCP listener with TLS 1.3 from the server's own CA (made at first
// start in DataDir/tls), or in plaintext on loopback with InsecureLoopback. With GatewayMTLS the listener
// verifies any client certificate given against the CA, and the gateway requires one for everything but
// Enroll.
func newSplitGateway(lc fx.Lifecycle, o ServerOptions, srv *server.Server, gca *gatewayCA) (*splitGateway, error) {
	g := &splitGateway{ca: gca.ca}
	opts := srv.GRPCServerOptions()
	if o.InsecureLoopback {
		opts = append(opts, grpc.Creds(insecure.NewCredentials()))
		o.Logger.Warn("gateway serves WITHOUT TLS (--insecure-loopback): only processes on this machine can reach it")
	} else {
		var topts []tlsca.ServerOption
		if o.GatewayMTLS {
			topts = append(topts, tlsca.VerifyClientCertIfGiven())
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(gca.ca.ServerTLSConfig(topts...))))
	}
	var journal *ingestJournal
	if o.DebugIngestLog != "" {
		var err error
		if journal, err = openIngestJournal(o.DebugIngestLog); err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(journal.Close)) // before serveGateway's hook: closed after the gateway stopped
		opts = append(opts, grpc.ChainStreamInterceptor(journal.interceptor()))
	}
	lis, err := net.Listen("tcp", o.GatewayListen)
	if err != nil {
		if journal != nil {
			_ = journal.Close()
		}
		return nil, fmt.Errorf("listen on %s for the gateway: %w", o.GatewayListen, err)
	}
	gs := grpc.NewServer(opts...)
	pb.RegisterGatewayServer(gs, srv.Gateway())
	if a := srv.Artifacts(); a != nil {
		pb.RegisterArtifactsServer(gs, a)
	}
	serveGateway(lc, lis, gs, srv.Drain)
	g.addr = lis.Addr().String()
	return g, nil
}

func newSplitHTTP(lc fx.Lifecycle, o ServerOptions, srv *server.Server) (*httpServer, error) {
	return serveHTTP(lc, o.Logger, o.Listen, srv.Handler())
}

// RunServer runs `hashfleet server` until ctx is done, then stops gracefully (ControlGoaway to every node).
func RunServer(ctx context.Context, o ServerOptions, out io.Writer) error {
	if o.DataDir == "" {
		return errors.New("--data-dir is required: the server keeps its store, keys and CA there")
	}
	token, generated, err := ResolveAdminToken(o.AdminToken)
	if err != nil {
		return err
	}
	o.AdminToken = token
	p, err := StartServer(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hashfleet server: API and UI %s\n", p.URL())
	scheme := "TLS"
	switch {
	case p.CA == nil:
		scheme = "PLAINTEXT (loopback only)"
	case o.GatewayMTLS:
		scheme = "TLS, mTLS: client certificate required"
	}
	fmt.Fprintf(out, "  gateway        %s (%s)\n", p.GatewayAddr, scheme)
	fmt.Fprintf(out, "  metrics        %s\n", p.obs.describe())
	if p.CA != nil {
		fmt.Fprintf(out, "  CA fingerprint %s\n", p.CA.Fingerprint())
		fmt.Fprintf(out, "  CA certificate %s   (give it to nodes with --ca-file, or have them pin the fingerprint)\n",
			filepath.Join(o.DataDir, "tls", tlsca.CACertFile))
		fmt.Fprintf(out, "  TLS hosts      %s\n", strings.Join(p.CA.ServerCertificate().DNSNames, ", ")+ipList(p.CA))
	}
	if generated {
		fmt.Fprintf(out, "  admin token    %s   (generated; set %s or --admin-token to keep one)\n", token, AdminTokenEnv)
	}
	if o.DebugInject {
		fmt.Fprintln(out, "  WARNING        --debug-inject: POST /api/v1/nodes/{id}/inject is enabled")
	}
	var cm *ClusterMember
	if o.Cluster != nil {
		co := *o.Cluster
		if co.Registry == nil && o.Registry != nil { // a nil *Registry in the interface would be non-nil
			co.Registry = o.Registry
		}
		if cm, err = StartClusterMember(ctx, co, token, o.Logger); err != nil {
			_ = p.Stop(context.Background())
			return err
		}
		cm.Describe(out)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "hashfleet server: stopping (goaway to every node)")
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if cm != nil {
		cm.Stop(stopCtx)
	}
	return p.Stop(stopCtx)
}

func ipList(ca *tlsca.CA) string {
	var s []string
	for _, ip := range ca.ServerCertificate().IPAddresses {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		return ""
	}
	return ", " + strings.Join(s, ", ")
}
