package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node"
	nodeart "github.com/hashfleet/hashfleet/node/artifacts"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// A split-mode node's data directory:
//
//	<DataDir>/            0700
//	  identity/           0700  identity.key, miner-signing.key, credential.key, enrollment.json (all 0600)
//	  store/                    Badger: seq high-water mark, audit log, results, ownership map, keyring
//	    spool/                  Badger of its own: telemetry and event batches until the cloud acks them
//	  status.json         0600  what `hashfleet node status` shows while the node runs (Badger is locked),
//	                            and the loopback admin endpoint's address and token

// Node data directory entries.
const (
	nodeIdentityDir = "identity"
	nodeStoreDir    = "store"
	nodeStatusFile  = "status.json"
)

// Server URL schemes in enrollment.json.
const (
	schemeTLS       = "grpcs"
	schemePlaintext = "grpc"
)

// EnrollOptions configures `hashfleet node enroll`.
type EnrollOptions struct {
	// Server is the gateway's HOST:PORT. Required.
	Server string
	// Code is the one-time enrollment code from the operator. Required.
	Code string
	// DataDir is the node's data directory (created 0700). Required.
	DataDir string
	// CAFile is the server's CA certificate (PEM) to pin. Without it the CA the server presents is trusted
	// on first use, after checking CAFingerprint when given.
	CAFile string
	// CAFingerprint pins the CA by its fingerprint ("SHA256:<hex>", as the server prints it).
	CAFingerprint string
	// InsecureLoopback enrolls without TLS; only for a loopback server.
	InsecureLoopback bool
	// Name and Site describe the node to the operator.
	Name, Site string
	// PollInterval is how often the node asks whether the operator confirmed it. Default 2s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Enroll makes the node's keys (or reuses them), prints the identity fingerprint, enrolls with the code,
// waits until the operator confirms the same fingerprint in the cloud, then saves the api_key, the pinned CA
// and the org's command keys. It returns the saved enrollment.
func Enroll(ctx context.Context, o EnrollOptions, out io.Writer) (identity.Enrollment, error) {
	if o.Server == "" || o.Code == "" || o.DataDir == "" {
		return identity.Enrollment{}, errors.New("--server, --code and --data-dir are required")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	host, _, err := net.SplitHostPort(o.Server)
	if err != nil {
		return identity.Enrollment{}, fmt.Errorf("--server %q must be HOST:PORT: %w", o.Server, err)
	}
	idDir := filepath.Join(o.DataDir, nodeIdentityDir)
	if e, err := identity.LoadEnrollment(idDir); err == nil && e.APIKey != "" {
		return identity.Enrollment{}, fmt.Errorf("this node is already enrolled as %s with %s; to enroll again, move %s away (the cloud must then revoke the old node)",
			e.NodeID, e.ServerURL, o.DataDir)
	}
	if err := ensureDataDir(o.DataDir); err != nil {
		return identity.Enrollment{}, err
	}
	id, created, err := identity.LoadOrCreate(idDir)
	if err != nil {
		return identity.Enrollment{}, err
	}
	if created {
		fmt.Fprintf(out, "node keys made in %s\n", idDir)
	}
	fmt.Fprintf(out, "node identity fingerprint: %s\n", id.Fingerprint())

	var creds credentials.TransportCredentials
	var caPEM []byte
	scheme := schemeTLS
	switch {
	case o.InsecureLoopback:
		if !isLoopbackHost(host) {
			return identity.Enrollment{}, fmt.Errorf("--insecure-loopback is only allowed for a loopback server, not %q", host)
		}
		creds, scheme = insecure.NewCredentials(), schemePlaintext
		fmt.Fprintln(out, "WARNING: enrolling without TLS (--insecure-loopback)")
	default:
		if caPEM, err = pinCA(ctx, o, out); err != nil {
			return identity.Enrollment{}, err
		}
		tc, err := tlsca.ClientTLSConfig(caPEM)
		if err != nil {
			return identity.Enrollment{}, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(o.Server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return identity.Enrollment{}, fmt.Errorf("connect to %s: %w", o.Server, err)
	}
	defer conn.Close()
	gw := pb.NewGatewayClient(conn)
	req := id.EnrollRequest(o.Code, o.Name, o.Site)
	tlsKey, err := enrollTLSKey(idDir, req, scheme == schemeTLS)
	if err != nil {
		return identity.Enrollment{}, err
	}
	var resp *pb.EnrollResponse
	announced := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err = gw.Enroll(rctx, req)
		cancel()
		switch {
		case err == nil && resp.GetConfirmed() && resp.GetApiKey() != "":
		case err == nil:
			if !announced {
				fmt.Fprintf(out, "enrolled as node %s (org %s); waiting for the operator to confirm fingerprint %s\n",
					resp.GetNodeId(), resp.GetOrgId(), resp.GetIdentityFingerprint())
				fmt.Fprintf(out, "  operator: POST /api/v1/nodes/%s/confirm {\"fingerprint\": \"%s\"}\n", resp.GetNodeId(), id.Fingerprint())
				announced = true
			}
			if resp.GetIdentityFingerprint() != id.Fingerprint() {
				return identity.Enrollment{}, fmt.Errorf("the cloud shows fingerprint %s for this node, but its key is %s: refusing to continue",
					resp.GetIdentityFingerprint(), id.Fingerprint())
			}
		case status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded:
			o.Logger.Warn("cloud unreachable while enrolling; retrying", slog.Any("err", err))
		default:
			return identity.Enrollment{}, fmt.Errorf("enroll: %w", err)
		}
		if err == nil && resp.GetConfirmed() && resp.GetApiKey() != "" {
			break
		}
		select {
		case <-ctx.Done():
			return identity.Enrollment{}, fmt.Errorf("enroll: stopped before the operator confirmed the node: %w", ctx.Err())
		case <-time.After(o.PollInterval):
		}
	}

	// The trusted command keys first, the api_key last: a node with an api_key is fully enrolled.
	st, err := store.Open(store.Options{DataDir: filepath.Join(o.DataDir, nodeStoreDir), Logger: o.Logger})
	if err != nil {
		return identity.Enrollment{}, err
	}
	err = st.SaveKeyring(resp.GetOrgId(), resp.GetCommandKeys())
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return identity.Enrollment{}, err
	}
	certSaved, certErr := saveClientCert(idDir, resp, caPEM, tlsKey, time.Now())
	e := identity.Enrollment{NodeID: resp.GetNodeId(), OrgID: resp.GetOrgId(), Site: resp.GetSite(), ServerURL: scheme + "://" + o.Server,
		CAPEM: string(caPEM), APIKey: resp.GetApiKey(), EnrolledAt: time.Now().UTC()}
	if err := identity.SaveEnrollment(idDir, e); err != nil {
		return identity.Enrollment{}, err
	}
	fmt.Fprintf(out, "confirmed: node %s of org %s, %d command key(s) trusted; api key saved in %s\n",
		e.NodeID, e.OrgID, len(resp.GetCommandKeys()), filepath.Join(idDir, identity.EnrollmentFile))
	reportClientCert(out, idDir, certSaved, certErr)
	fmt.Fprintf(out, "run it: hashfleet node run --data-dir %s --devices FILE\n", o.DataDir)
	return e, nil
}

func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("node data directory: %w", err)
	}
	return nil
}

// pinCA returns the CA PEM to pin: from CAFile, or the CA certificate the server presents (trust on first
// use), checked against CAFingerprint when given.
func pinCA(ctx context.Context, o EnrollOptions, out io.Writer) ([]byte, error) {
	if o.CAFile != "" {
		b, err := os.ReadFile(filepath.Clean(o.CAFile))
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.CAFile)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		if o.CAFingerprint != "" && !tlsca.SameFingerprint(o.CAFingerprint, c) {
			return nil, fmt.Errorf("--ca-file has fingerprint %s, not the --ca-fingerprint given", tlsca.Fingerprint(c))
		}
		fmt.Fprintf(out, "pinned server CA from %s: %s\n", o.CAFile, tlsca.Fingerprint(c))
		return b, nil
	}
	ca, err := probeCA(ctx, o.Server)
	if err != nil {
		return nil, err
	}
	fp := tlsca.Fingerprint(ca)
	switch {
	case o.CAFingerprint != "" && !tlsca.SameFingerprint(o.CAFingerprint, ca):
		return nil, fmt.Errorf("the server at %s presents CA %s, not the --ca-fingerprint given: refusing to enroll (wrong server, or someone in between)",
			o.Server, fp)
	case o.CAFingerprint != "":
		fmt.Fprintf(out, "server CA fingerprint %s matches --ca-fingerprint; pinned\n", fp)
	default:
		fmt.Fprintf(out, "server CA fingerprint: %s\n", fp)
		fmt.Fprintln(out, "  trusted on first use and pinned: compare it with the one `hashfleet server` printed (or pass --ca-fingerprint)")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
}

// probeCA connects to the gateway, takes the CA certificate from the chain it presents and checks that the
// server certificate is issued by it for the host dialled. Nothing is trusted yet: the caller compares the
// fingerprint or asks the operator to.
func probeCA(ctx context.Context, addr string) (*x509.Certificate, error) {
	host, _, _ := net.SplitHostPort(addr)
	var ca *x509.Certificate
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, //nolint:gosec // verified below against the CA the server presents; pinned by fingerprint
		NextProtos:         []string{"h2"},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) < 2 {
				return errors.New("the server presents no CA certificate in its chain (not a hashfleet server?); use --ca-file")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			root, err := x509.ParseCertificate(raw[len(raw)-1])
			if err != nil {
				return err
			}
			if !root.IsCA {
				return errors.New("the last certificate the server presents is not a CA; use --ca-file")
			}
			pool := x509.NewCertPool()
			pool.AddCert(root)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				return fmt.Errorf("the server certificate does not verify with the CA it presents: %w", err)
			}
			ca = root
			return nil
		},
	}
	d := tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("reach the server's gateway at %s: %w", addr, err)
	}
	_ = c.Close()
	return ca, nil
}

// NodeRunOptions configures `hashfleet node run`.
type NodeRunOptions struct {
	// DataDir is the enrolled node's data directory. Required.
	DataDir string
	// Devices are the miners the node may manage (its --devices file): reported to the cloud, run once the
	// operator pairs them.
	Devices []*pb.Device
	// InsecureLoopback allows a plaintext gateway (enrolled with --insecure-loopback, loopback only).
	InsecureLoopback bool
	// PollInterval between polls of one miner. Default 5s.
	PollInterval time.Duration
	// LocalLogRetention keeps finished local commands this long (node.Config.LocalLogRetention). 0: 30 days.
	LocalLogRetention time.Duration
	// StatusInterval is how often status.json is written. Default 2s.
	StatusInterval time.Duration
	// ReplayRate bounds the samples or events sent per second per stream (a reconnect's spool replay shares
	// it with live batches). 0: the default 20,000/s.
	ReplayRate int
	// AdminListen is the loopback address of the node's read-only admin endpoint (node_admin.go), named in
	// status.json. Default 127.0.0.1:0 (a free port); NodeAdminOff turns it off.
	AdminListen string
	// HeartbeatInterval overrides the uplink's (tests). Default 5s.
	HeartbeatInterval time.Duration
	// Backoff overrides the reconnect policy (tests). Zero: the default 1s → 30s.
	Backoff uplink.Backoff
	Clock   clock.Clock
	Logger  *slog.Logger
	// Registry receives the node's metrics. Default a new registry.
	Registry *prometheus.Registry
	// Metrics configures the metrics and health server (observability.go); nil: none.
	Metrics *MetricsConfig
	// ForwardMetrics sends the node's process metrics to the cloud over the events stream every
	// ForwardMetricsInterval (default 30s), shown in GET /api/v1/nodes. Default off.
	ForwardMetrics         bool
	ForwardMetricsInterval time.Duration
	// MinerSourceIP, when set, is the local address the node dials its miners from (node.Drivers.SourceIP).
	// Default: any.
	MinerSourceIP string
	// GatewayDialOptions are added to the gateway connection's options (the chaos simulations' message
	// fault shim). Default none.
	GatewayDialOptions []grpc.DialOption
	// WrapOutbox wraps the node's spool (node.Config.WrapOutbox; the chaos simulations' disk-full fault).
	// Default nil.
	WrapOutbox func(telemetry.Outbox) telemetry.Outbox
	// LocalUI is the local UI's listen address (split_node_local.go; `--local-ui`, whose default is :8443);
	// "" or "off" serves none.
	LocalUI string
	// LocalUITune adjusts the local UI's config before it starts (tests: refresh interval). Default nil.
	LocalUITune func(*localui.Config)
	// GossipListen is the "host:port" the warm-standby pair gossip binds when the cloud makes this node a
	// pair member (`--gossip-listen`). Default "0.0.0.0:7946".
	GossipListen string
	// GossipAdvertise is the "host:port" the partner reaches this node's gossip at (`--gossip-advertise`).
	// Default: the listen address, or the first private IP when listening on all interfaces.
	GossipAdvertise string
	// PairTune adjusts the pair configuration (lease and gossip timings, WAN-down policy) before the node
	// starts. Default nil: node.DefaultPairConfig().
	PairTune func(*node.PairConfig)
	// WriteLog records every miner write with its lease epoch (node.Config.WriteLog). Default nil: the
	// node's miner-writes.jsonl in its store directory.
	WriteLog writelog.Log
	// WrapDrivers, when set, wraps the node's driver factory (benchmarks: synthetic miners, timing hooks).
	// Default nil: the drivers as they are.
	WrapDrivers func(func(*pb.Device) (miners.Driver, error)) func(*pb.Device) (miners.Driver, error)
	// MaxInFlight and MaxCommandsInFlight, above 0, override the node's bounds on open miner connections
	// (node.Config). Default 0: the node's defaults.
	MaxInFlight, MaxCommandsInFlight int
}

// NodeProcess is a running split-mode node.
type NodeProcess struct {
	Node       *node.Node
	Enrollment identity.Enrollment
	// AdminURL is the admin endpoint's base URL ("" when off).
	AdminURL string
	// LocalUI is the node's local UI (nil when off).
	LocalUI *localui.Server
	// Artifacts moves artifacts over the gateway (firmware in, log bundles out).
	Artifacts *nodeart.Client
	app       *fx.App
	obs       *observability
}

// Stop stops the node (uplink first, then miners, gate, store).
func (p *NodeProcess) Stop(ctx context.Context) error { return p.app.Stop(ctx) }

func (o NodeRunOptions) env() processEnv {
	return processEnv{Clock: o.Clock, Logger: o.Logger, Registry: o.Registry}
}

// StartNode starts an enrolled node: it dials the gateway over TLS pinned to the CA from enrollment, opens a
// session with its api_key and identity key, and runs the miners the cloud says it owns.
func StartNode(ctx context.Context, o NodeRunOptions) (*NodeProcess, error) {
	if o.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if err := validateMetrics(o.Metrics); err != nil {
		return nil, err
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
	if o.StatusInterval <= 0 {
		o.StatusInterval = 2 * time.Second
	}
	idDir := filepath.Join(o.DataDir, nodeIdentityDir)
	id, err := identity.Load(idDir)
	if err != nil {
		return nil, err
	}
	e, err := identity.LoadEnrollment(idDir)
	if err != nil {
		return nil, fmt.Errorf("%w (run `hashfleet node enroll` first)", err)
	}
	if e.APIKey == "" {
		return nil, fmt.Errorf("node %s is not confirmed yet: no api key in %s; finish `hashfleet node enroll`", e.NodeID, idDir)
	}
	certOpts, err := nodeClientCert(idDir, o.Clock.Now(), o.Logger)
	if err != nil {
		return nil, err
	}
	dial, err := gatewayDialerWith(e, o.InsecureLoopback, o.GatewayDialOptions, certOpts...)
	if err != nil {
		return nil, err
	}
	p := &NodeProcess{Enrollment: e}
	if p.Artifacts, err = newNodeArtifacts(o.DataDir, e.NodeID, dial, uplink.ProofOfPossession(e.NodeID, e.APIKey, id.SignChallenge), o.Clock, o.Logger); err != nil {
		return nil, err
	}
	app := fx.New(
		fxLogger(o.Logger),
		observe(o.Metrics),
		fx.Supply(o, o.env()),
		fx.Invoke(nodeChecks),
		fx.Populate(&p.obs),
		fx.Provide(newActorRuntime, func(lc fx.Lifecycle, rt *actorRuntime) (*node.Node, error) {
			cfg := nodeConfig(o.env(), rt, o.PollInterval, "")
			cfg.NodeID, cfg.OrgID, cfg.Site = e.NodeID, e.OrgID, e.Site
			cfg.DataDir = filepath.Join(o.DataDir, nodeStoreDir)
			cfg.Candidates = o.Devices
			cfg.LocalLogRetention = o.LocalLogRetention
			cfg.AcceptCloudOwnership = true
			cfg.Dial = dial
			cfg.Authorize = uplink.ProofOfPossession(e.NodeID, e.APIKey, id.SignChallenge)
			cfg.MinerKey, cfg.MinerKeySignature = id.MinerKeyAnnouncement(e.NodeID)
			drivers, key, err := nodeDrivers(id, e.NodeID, o.env()) // Proto JWTs, sealed logins, pairing
			if err != nil {
				return nil, err
			}
			drivers.SourceIP = o.MinerSourceIP
			cfg.WrapOutbox = o.WrapOutbox
			if o.GossipListen != "" {
				cfg.Pair.GossipListen = o.GossipListen
			}
			cfg.Pair.GossipAdvertise, cfg.WriteLog = o.GossipAdvertise, o.WriteLog
			if o.PairTune != nil {
				o.PairTune(&cfg.Pair)
			}
			cfg.DriverFactory, cfg.Pairer, cfg.CredentialKey = drivers.NewForCommands, drivers, key
			cfg.DriverFactory = p.Artifacts.WrapDrivers(cfg.DriverFactory) // firmware images over the gateway
			if o.WrapDrivers != nil {
				cfg.DriverFactory = o.WrapDrivers(cfg.DriverFactory)
			}
			if o.MaxInFlight > 0 {
				cfg.MaxInFlight = o.MaxInFlight
			}
			if o.MaxCommandsInFlight > 0 {
				cfg.MaxCommandsInFlight = o.MaxCommandsInFlight
			}
			if o.HeartbeatInterval > 0 {
				cfg.HeartbeatInterval = o.HeartbeatInterval
			}
			if o.Backoff != (uplink.Backoff{}) {
				cfg.Backoff = o.Backoff
			}
			if o.ReplayRate > 0 {
				cfg.ReplayRate = o.ReplayRate
			}
			if o.ForwardMetrics {
				cfg.ForwardMetrics, cfg.ForwardMetricsInterval = o.Registry, o.ForwardMetricsInterval
			}
			n, err := startNode(lc, cfg)
			if err == nil {
				drivers.Owns = n.Owns
			}
			return n, err
		}),
		fx.Invoke(func(lc fx.Lifecycle, n *node.Node) error {
			p.Node = n
			admin, err := serveNodeAdmin(lc, o.Logger, o.AdminListen, n) // after the node: stops before its stores close
			if err != nil {
				return err
			}
			if admin != nil {
				p.AdminURL = admin.url
			}
			if p.LocalUI, err = serveNodeLocalUI(lc, o, n, e.NodeID, o.Logger); err != nil {
				return err
			}
			writeStatusWhileRunning(lc, n, e, filepath.Join(o.DataDir, nodeStatusFile), o.StatusInterval, o.Logger, admin)
			return nil
		}),
	)
	if err := app.Start(ctx); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	p.app = app
	return p, nil
}

// gatewayDialer dials the gateway of an enrollment: TLS 1.3 with only the pinned CA trusted, or plaintext on
// loopback when explicitly allowed.
func gatewayDialer(e identity.Enrollment, allowInsecure bool, tlsOpts ...tlsca.ClientOption) (func(context.Context) (*grpc.ClientConn, error), error) {
	return gatewayDialerWith(e, allowInsecure, nil, tlsOpts...)
}

// gatewayDialerWith is gatewayDialer with extra dial options appended.
func gatewayDialerWith(e identity.Enrollment, allowInsecure bool, extra []grpc.DialOption, tlsOpts ...tlsca.ClientOption) (func(context.Context) (*grpc.ClientConn, error), error) {
	u, err := url.Parse(e.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("enrollment server_url %q: %w", e.ServerURL, err)
	}
	var creds credentials.TransportCredentials
	switch {
	case u.Scheme == schemeTLS && e.CAPEM != "":
		tc, err := tlsca.ClientTLSConfig([]byte(e.CAPEM), tlsOpts...)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	case u.Scheme == schemePlaintext && allowInsecure && isLoopbackHost(u.Hostname()):
		creds = insecure.NewCredentials()
	case u.Scheme == schemePlaintext:
		return nil, fmt.Errorf("this node enrolled without TLS with %s; run it with --insecure-loopback (loopback servers only)", u.Host)
	default:
		return nil, fmt.Errorf("enrollment server_url %q has no pinned CA: enroll again", e.ServerURL)
	}
	target := u.Host
	return func(context.Context) (*grpc.ClientConn, error) {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second})}
		return grpc.NewClient(target, append(opts, extra...)...)
	}, nil
}

// RunNode runs `hashfleet node run` until ctx is done.
func RunNode(ctx context.Context, o NodeRunOptions, devicesFile string, out io.Writer) error {
	if devicesFile != "" {
		devs, err := ReadDevices(devicesFile)
		if err != nil {
			return err
		}
		o.Devices = devs
	}
	p, err := StartNode(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hashfleet node %s (org %s): %d device(s) offered for pairing; cloud %s\n",
		p.Enrollment.NodeID, p.Enrollment.OrgID, len(o.Devices), p.Enrollment.ServerURL)
	fmt.Fprintf(out, "  metrics  %s\n", p.obs.describe())
	fmt.Fprintf(out, "  local UI %s\n", describeLocalUI(p.LocalUI, o.DataDir))
	<-ctx.Done()
	fmt.Fprintln(out, "hashfleet node: stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.Stop(stopCtx)
}
