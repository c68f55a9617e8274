package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ClusterOptions make `hashfleet server` a member of a multi-member cloud (server/cloudcluster): it joins
// the cluster through etcd, hosts Node and Lease grains on the shared Postgres store, and serves the
// cluster endpoints (/cluster/v1, admin token) and a cluster gateway for nodes. Without them the server is
// the single-member default on embedded Badger, with no set-up.
type ClusterOptions struct {
	// EtcdEndpoints are etcd client endpoints (host:port). Required.
	EtcdEndpoints []string
	// PostgresDSN is the shared store, e.g. postgres://hashfleet@127.0.0.1:5432/hashfleet. Required.
	PostgresDSN string
	// Listen is this member's protoactor remoting address (host:port other members reach). Default
	// 127.0.0.1:7600.
	Listen string
	// HTTPListen serves /cluster/v1 (bearer: the server's admin token). Default 127.0.0.1:7601.
	HTTPListen string
	// GatewayListen is the cluster gateway nodes dial: their streams are routed through the Node grains,
	// so commands issued on any member reach them. With KEKFile it serves TLS from the members' shared CA
	// and authenticates nodes as split mode does (enrollment on any member, session tokens, client
	// certificates), on any address. "off" disables it. Default 127.0.0.1:7602.
	GatewayListen string
	// ClusterName: members with one name form one cluster. Default "hashfleet".
	ClusterName string
	// KEKFile is the key-encryption key (0600 file, `hashfleet server cluster-kek --out FILE`) every member
	// is given: it seals the shared CA, command-issuance keys and enrollment secret in Postgres
	// (cloudcluster.OpenSecrets). Required unless InsecureLoopback.
	KEKFile string
	// DataDir is where the member keeps its own TLS server certificate (DataDir/cluster-tls). Required for
	// a TLS cluster gateway.
	DataDir string
	// TLSHosts are the names and IPs the member's gateway certificate is valid for (what nodes dial).
	// Default localhost, 127.0.0.1, ::1.
	TLSHosts []string
	// InsecureLoopback serves the cluster gateway without TLS, only on a loopback address (tests). With
	// KEKFile nodes still enroll and need session tokens and commands are signed; without it the gateway
	// trusts the node-id metadata and commands go out unsigned (wiring tests only).
	InsecureLoopback bool
	// OrgID is the org the cluster runs. Default "default".
	OrgID string
	// SessionTTL is a node session's lifetime. Default 1h.
	SessionTTL time.Duration
	// Clock is business time (sessions, certificates, command timestamps). Default the wall clock.
	Clock clock.Clock
	// Registry receives the member's metrics (history retention). Nil: unregistered.
	Registry prometheus.Registerer
}

// ClusterMember is a running member and its listeners.
type ClusterMember struct {
	Member      *cloudcluster.Member
	Store       *pgstore.Store
	HTTPAddr    string
	GatewayAddr string
	// Secrets are the members' shared secrets (nil without KEKFile); Auth authenticates the gateway's
	// nodes (nil without KEKFile); CA serves the gateway's TLS (nil with InsecureLoopback).
	Secrets *cloudcluster.Secrets
	Auth    *cloudcluster.Auth
	CA      *tlsca.CA
	gw      *gateway.Gateway
	grpc    *grpc.Server
	http    *http.Server
}

func (o ClusterOptions) withDefaults() ClusterOptions {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:7600"
	}
	if o.HTTPListen == "" {
		o.HTTPListen = "127.0.0.1:7601"
	}
	if o.GatewayListen == "" {
		o.GatewayListen = "127.0.0.1:7602"
	}
	if o.OrgID == "" {
		o.OrgID = "default"
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	return o
}

// Validate reports what an operator must fix.
func (o ClusterOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if len(o.EtcdEndpoints) == 0 {
		errs = append(errs, errors.New("cluster: --cluster-etcd needs at least one etcd endpoint (host:port)"))
	}
	if o.PostgresDSN == "" {
		errs = append(errs, errors.New("cluster: --postgres is required with --cluster-etcd (the members' shared store)"))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("cluster: --cluster-listen %q: %w", o.Listen, err))
	}
	if o.KEKFile == "" && !o.InsecureLoopback {
		errs = append(errs, errors.New("cluster: --cluster-kek-file is required: it seals the CA, command keys and enrollment secret every member shares (make one with `hashfleet server cluster-kek --out FILE`); only a loopback test cluster may run without it (--insecure-loopback)"))
	}
	if o.GatewayListen != "off" {
		host, _, err := net.SplitHostPort(o.GatewayListen)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cluster: --cluster-gateway-listen %q: %w", o.GatewayListen, err))
		case o.InsecureLoopback:
			a, perr := netip.ParseAddr(host)
			if perr != nil || !a.Unmap().IsLoopback() {
				errs = append(errs, fmt.Errorf("cluster: --insecure-loopback serves the cluster gateway without TLS, so --cluster-gateway-listen %q must be a loopback host:port (or \"off\")", o.GatewayListen))
			}
		case o.DataDir == "":
			errs = append(errs, errors.New("cluster: the cluster gateway's TLS certificate needs a data directory (--data-dir)"))
		}
	}
	if o.SessionTTL < 0 {
		errs = append(errs, fmt.Errorf("cluster: session TTL %s is negative", o.SessionTTL))
	}
	return errors.Join(errs...)
}

// ParseEtcdEndpoints reads --cluster-etcd: "etcd://host:port,host:port" or "host:port,...".
func ParseEtcdEndpoints(s string) []string {
	s = strings.TrimPrefix(s, "etcd://")
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// StartClusterMember opens the shared store (migrating it forward), opens the members' shared secrets with
// the KEK (creating them at the first member's start), joins the cluster and starts serving.
func StartClusterMember(ctx context.Context, o ClusterOptions, adminToken string, log *slog.Logger) (*ClusterMember, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	var kek cloudcluster.KEK
	if o.KEKFile != "" {
		// The key file is checked before anything touches the store.
		var err error
		if kek, err = cloudcluster.LoadKEK(o.KEKFile); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	st, err := pgstore.Open(ctx, pgstore.Config{DSN: o.PostgresDSN, Logger: log})
	if err != nil {
		return nil, err
	}
	cm := &ClusterMember{Store: st}
	if o.KEKFile != "" {
		if cm.Secrets, err = cloudcluster.OpenSecrets(st, kek, o.OrgID, o.Clock); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if len(cm.Secrets.Created) > 0 {
			log.Info("created the cluster's shared secrets", slog.Any("secrets", cm.Secrets.Created), slog.String("kek", kek.ID()))
		}
	}
	host, portS, _ := net.SplitHostPort(o.Listen)
	port, err := strconv.Atoi(portS)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("cluster: --cluster-listen port %q: %w", portS, err)
	}
	cfg := cloudcluster.DefaultConfig()
	cfg.Host, cfg.Port, cfg.EtcdEndpoints, cfg.Store, cfg.LeaseStore, cfg.Logger = host, port, o.EtcdEndpoints, st, st, log
	cfg.Clock = o.Clock
	cfg.Retention.Metrics = cloudcluster.NewRetentionMetrics(o.Registry)
	if cm.Secrets != nil {
		cfg.Signer = cm.Secrets.Signer
	} else {
		log.Warn("cluster member WITHOUT shared secrets (--insecure-loopback, no --cluster-kek-file): commands go out unsigned and the cluster gateway trusts the node-id metadata")
	}
	if o.ClusterName != "" {
		cfg.ClusterName = o.ClusterName
	}
	m, err := cloudcluster.Start(cfg)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	cm.Member = m
	if cm.Secrets != nil {
		if o.GatewayListen != "off" && !o.InsecureLoopback {
			tcfg := tlsca.DefaultConfig(filepath.Join(o.DataDir, "cluster-tls"))
			if len(o.TLSHosts) > 0 {
				tcfg.Hosts = o.TLSHosts
			}
			if cm.CA, err = cm.Secrets.CA(tcfg, o.Clock.Now()); err != nil {
				cm.stopMember()
				return nil, fmt.Errorf("cluster: %w", err)
			}
		}
		acfg := cloudcluster.AuthConfig{Secrets: cm.Secrets, Store: st, CA: cm.CA, OrgID: o.OrgID, SessionTTL: o.SessionTTL,
			Clock: o.Clock, Logger: log}
		if cm.Auth, err = m.NewAuth(acfg); err != nil {
			cm.stopMember()
			return nil, err
		}
	}
	hl, err := net.Listen("tcp", o.HTTPListen)
	if err != nil {
		cm.stopMember()
		return nil, fmt.Errorf("cluster: listen %s: %w", o.HTTPListen, err)
	}
	cm.HTTPAddr = hl.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler(adminToken))
	if cm.Auth != nil {
		mux.Handle("/cluster/v1/enrollment/", cm.Auth.Handler(adminToken))
	}
	cm.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cm.http.Serve(hl) }()
	if o.GatewayListen != "off" {
		if err := cm.startGateway(o, log); err != nil {
			cm.Stop(ctx)
			return nil, err
		}
	}
	return cm, nil
}

// startGateway serves the cluster gateway: TLS from the shared CA with client certificates verified
// (mTLS required for everything but Enroll) and session tokens, or plaintext on loopback.
func (c *ClusterMember) startGateway(o ClusterOptions, log *slog.Logger) error {
	gcfg := gateway.DefaultConfig()
	gcfg.Logger, gcfg.Clock = log, o.Clock
	if c.Auth != nil {
		gcfg = c.Auth.GatewayConfig(gcfg, c.CA != nil)
	} else {
		gcfg.Authenticator = gateway.TrustNodeMetadata()
	}
	gw, err := gateway.New(gcfg, c.Member.Fleet())
	if err != nil {
		return err
	}
	c.gw = gw
	if c.Auth != nil {
		c.Auth.AttachGateway(gw)
	}
	opts := gateway.ServerOptions(gcfg)
	if c.CA != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(c.CA.ServerTLSConfig(tlsca.VerifyClientCertIfGiven()))))
	} else {
		log.Warn("cluster gateway serves WITHOUT TLS (--insecure-loopback): only processes on this machine can reach it")
	}
	gl, err := net.Listen("tcp", o.GatewayListen)
	if err != nil {
		return fmt.Errorf("cluster: listen %s: %w", o.GatewayListen, err)
	}
	c.GatewayAddr = gl.Addr().String()
	c.grpc = grpc.NewServer(opts...)
	pb.RegisterGatewayServer(c.grpc, gw)
	go func() { _ = c.grpc.Serve(gl) }()
	return nil
}

// Describe prints the member's addresses.
func (c *ClusterMember) Describe(out io.Writer) {
	fmt.Fprintf(out, "  cluster member %s (remoting %s)\n", c.Member.ID(), c.Member.Address())
	fmt.Fprintf(out, "  cluster API    http://%s/cluster/v1 (admin token)\n", c.HTTPAddr)
	if c.GatewayAddr == "" {
		return
	}
	switch {
	case c.CA != nil:
		fmt.Fprintf(out, "  cluster gw     %s (TLS, mTLS after enrollment, session tokens)\n", c.GatewayAddr)
		fmt.Fprintf(out, "  cluster CA     %s (shared by every member; nodes pin it)\n", c.CA.Fingerprint())
	case c.Auth != nil:
		fmt.Fprintf(out, "  cluster gw     %s (PLAINTEXT, loopback only; session tokens)\n", c.GatewayAddr)
	default:
		fmt.Fprintf(out, "  cluster gw     %s (PLAINTEXT, loopback only; trusts node-id metadata, commands unsigned)\n", c.GatewayAddr)
	}
}

// Stop drains the cluster gateway (ControlGoaway to its nodes), leaves the cluster gracefully (grains hand
// off) and closes the store.
func (c *ClusterMember) Stop(ctx context.Context) {
	if c.gw != nil {
		_ = c.gw.Drain(ctx)
	}
	if c.grpc != nil {
		c.grpc.Stop()
	}
	if c.http != nil {
		_ = c.http.Shutdown(ctx)
	}
	c.stopMember()
}

func (c *ClusterMember) stopMember() {
	c.Member.Stop(true)
	_ = c.Store.Close()
}
