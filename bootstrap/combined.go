package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// LocalNodeID is the node id of the node inside a combined process.
const LocalNodeID = "local"

// CombinedOptions configures combined mode: cloud server and one node in one process, the node's gateway
// streams over an in-process listener no other host can reach.
type CombinedOptions struct {
	// DataDir holds the stores (DataDir/cloud, DataDir/node). Required; "" is only for tests (in memory).
	DataDir string
	// Listen is the HTTP address of the API and UI. Default 127.0.0.1:8080; ":0" picks a free port.
	Listen string
	// AdminToken is the API bearer token (see ResolveAdminToken). Required.
	AdminToken string
	// Devices are the miners the node runs.
	Devices []*pb.Device
	// PollInterval between polls of one miner. Default 5s.
	PollInterval time.Duration
	// Devices are the miners the node runs from the start (they are registered as its own); more join by
	// discovery and pairing (POST /api/v1/discovery, POST /api/v1/pairings). None is fine.
	//
	// DriverFactory overrides the node's drivers. Default: every protocol, with the local node's keys (Proto
	// rigs paired with its miner-signing key, logins sealed to its credential key).
	DriverFactory func(*pb.Device) (miners.Driver, error)
	// WrapDriver, when set, wraps every driver the node makes (tests inject faults with it).
	WrapDriver func(*pb.Device, miners.Driver) miners.Driver
	// Clock is business time. Default the wall clock.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registry receives every metric of the process. Default a new registry with the Go and process
	// collectors.
	Registry *prometheus.Registry
	// Metrics configures the metrics and health server (/metrics with the union of the server's and the
	// node's series, /healthz, /readyz, /status/ha). Nil: none.
	Metrics *MetricsConfig
	// ForwardMetrics sends the node's process metrics to the cloud over the events stream every
	// ForwardMetricsInterval (default 30s), shown in GET /api/v1/nodes. Default off.
	ForwardMetrics         bool
	ForwardMetricsInterval time.Duration
}

// DefaultListen is where the API and UI listen unless told otherwise: loopback, so a fresh install exposes
// nothing to the network.
const DefaultListen = "127.0.0.1:8080"

func (o CombinedOptions) withDefaults() CombinedOptions {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
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
func (o CombinedOptions) Validate() error {
	var errs []error
	if o.AdminToken == "" {
		errs = append(errs, errors.New("combined: admin token is empty"))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("combined: poll interval %s is negative", o.PollInterval))
	}
	if o.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			errs = append(errs, fmt.Errorf("combined: listen address %q: %w", o.Listen, err))
		}
	}
	if err := validateMetrics(o.Metrics); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Combined is a running combined-mode process.
type Combined struct {
	Server *server.Server
	Node   *node.Node
	// HTTPAddr is the address the API and UI listen on (the real port when Listen asked for :0).
	HTTPAddr string
	app      *fx.App
	obs      *observability
}

// URL is the operator UI's address.
func (c *Combined) URL() string { return "http://" + c.HTTPAddr + "/" }

// StartCombined starts server and node and returns once both are running and the HTTP listener is bound.
func StartCombined(ctx context.Context, opts CombinedOptions) (*Combined, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Combined{}
	app := fx.New(
		fxLogger(opts.Logger),
		observe(opts.Metrics),
		fx.Supply(opts, opts.env()),
		fx.Provide(newActorRuntime, newLocalIdentity, newServer, newGatewayListener, newNode, newHTTP),
		fx.Invoke(serverChecks, nodeChecks),
		fx.Populate(&c.obs),
		fx.Invoke(func(s *server.Server, n *node.Node, h *httpServer) {
			c.Server, c.Node = s, n
			c.HTTPAddr = h.addr
		}),
	)
	if err := app.Start(ctx); err != nil {
		return nil, fmt.Errorf("start combined mode: %w", err)
	}
	c.app = app
	return c, nil
}

// Stop stops everything in reverse start order: HTTP, node, gateway, server, actors.
func (c *Combined) Stop(ctx context.Context) error {
	return c.app.Stop(ctx)
}

func subdir(dataDir, name string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, name)
}

func (o CombinedOptions) env() processEnv {
	return processEnv{Clock: o.Clock, Logger: o.Logger, Registry: o.Registry}
}

func newServer(lc fx.Lifecycle, o CombinedOptions, rt *actorRuntime, id *localIdentity) (*server.Server, error) {
	cfg := serverConfig(o.env(), rt, "cloud")
	cfg.DataDir = subdir(o.DataDir, "cloud")
	cfg.KeysDir = subdir(o.DataDir, "cloud-keys")
	cfg.ArtifactsDir = subdir(o.DataDir, "cloud-artifacts")
	cfg.AdminToken = o.AdminToken
	cfg.Combined = true
	cfg.NodeKeys = id.nodeKeys("default") // credentials given at pairing are sealed to the local node's key
	return startServer(lc, cfg)
}

// gatewayListener is the in-process gRPC listener the local node dials.
type gatewayListener struct {
	lis *bufconn.Listener
}

func newGatewayListener(lc fx.Lifecycle, srv *server.Server) *gatewayListener {
	gl := &gatewayListener{lis: bufconn.Listen(1 << 20)}
	gs := grpc.NewServer(srv.GRPCServerOptions()...)
	pb.RegisterGatewayServer(gs, srv.Gateway())
	if a := srv.Artifacts(); a != nil {
		pb.RegisterArtifactsServer(gs, a)
	}
	// No drain here: the local node stops before the listener (fx stops in reverse), closing its streams.
	serveGateway(lc, gl.lis, gs, nil)
	return gl
}

func (gl *gatewayListener) dial(ctx context.Context) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///combined-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return gl.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func newNode(lc fx.Lifecycle, o CombinedOptions, rt *actorRuntime, gl *gatewayListener, srv *server.Server, id *localIdentity) (*node.Node, error) {
	cfg := nodeConfig(o.env(), rt, o.PollInterval, "node")
	cfg.NodeID = LocalNodeID
	cfg.OrgID = "default"
	cfg.DataDir = subdir(o.DataDir, "node")
	// The local node runs the cloud's ownership map, as a split node does: the configured devices (registered
	// as its own before it starts) and every device the operator pairs after discovery.
	cfg.Devices = localDevices(o.Devices)
	registerConfigured(lc, srv, cfg.Devices)
	cfg.AcceptCloudOwnership = true
	cfg.Dial = gl.dial
	drivers, key, err := nodeDrivers(id.id, LocalNodeID, o.env())
	if err != nil {
		return nil, err
	}
	cfg.Pairer, cfg.CredentialKey = drivers, key
	// The same gate as split mode: every command is verified with the org's ed25519 command keys (the
	// keyring persisted in the node store, started from the server's public keys at first run).
	cfg.CommandKeys = srv.Keys().Keys()
	cfg.DriverFactory = drivers.NewForCommands
	if o.DataDir != "" { // firmware images and log bundles over the in-process gateway's Artifacts service
		art, err := newNodeArtifacts(o.DataDir, LocalNodeID, gl.dial, nil, o.Clock, o.Logger) // DataDir/artifacts
		if err != nil {
			return nil, err
		}
		cfg.DriverFactory = art.WrapDrivers(cfg.DriverFactory)
	}
	if o.DriverFactory != nil {
		cfg.DriverFactory = o.DriverFactory
	}
	cfg.DriverFactory = wrapFactory(cfg.DriverFactory, o.WrapDriver)
	if o.ForwardMetrics {
		cfg.ForwardMetrics, cfg.ForwardMetricsInterval = o.Registry, o.ForwardMetricsInterval
	}
	n, err := startNode(lc, cfg)
	if err != nil {
		return nil, err
	}
	drivers.Owns = n.Owns // logins are opened only for devices in the node's ownership map
	return n, nil
}

func newHTTP(lc fx.Lifecycle, o CombinedOptions, srv *server.Server) (*httpServer, error) {
	return serveHTTP(lc, o.Logger, o.Listen, srv.Handler())
}

// CombinedRunOptions configures `hashfleet combined`.
type CombinedRunOptions struct {
	DataDir      string
	Listen       string
	AdminToken   string
	DevicesFile  string
	PollInterval time.Duration
	Logger       *slog.Logger
	// Metrics configures the metrics and health server; nil: none (--metrics-listen off).
	Metrics *MetricsConfig
	// ForwardMetrics: --forward-metrics.
	ForwardMetrics bool
}

// RunCombined runs combined mode against the miners in DevicesFile until ctx is done.
func RunCombined(ctx context.Context, o CombinedRunOptions, out io.Writer) error {
	if o.DataDir == "" {
		return errors.New("--data-dir is required: combined mode keeps its state there")
	}
	if err := validateMetrics(o.Metrics); err != nil {
		return err
	}
	var devs []*pb.Device
	if o.DevicesFile != "" {
		var err error
		if devs, err = ReadDevices(o.DevicesFile); err != nil {
			return err
		}
	}
	token, generated, err := ResolveAdminToken(o.AdminToken)
	if err != nil {
		return err
	}
	c, err := StartCombined(ctx, CombinedOptions{DataDir: o.DataDir, Listen: o.Listen, AdminToken: token,
		Devices: devs, PollInterval: o.PollInterval, Logger: o.Logger, Metrics: o.Metrics, ForwardMetrics: o.ForwardMetrics})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hashfleet combined: %d configured miners, UI %s\n", len(devs), c.URL())
	if len(devs) == 0 {
		fmt.Fprintf(out, "  find miners   POST %sapi/v1/discovery {\"targets\":[\"10.0.0.0/24\"]}, then pair them: POST %sapi/v1/pairings\n", c.URL(), c.URL())
	}
	fmt.Fprintf(out, "  metrics       %s\n", c.obs.describe())
	if generated {
		fmt.Fprintf(out, "  admin token   %s   (generated; set %s or --admin-token to keep one)\n", token, AdminTokenEnv)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Stop(stopCtx)
}
