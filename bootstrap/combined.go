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
	// DriverFactory makes miner drivers. Default DriverFactory(nil).
	DriverFactory func(*pb.Device) (miners.Driver, error)
	// Clock is business time. Default the wall clock.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registry receives every metric of the process. Default a new registry with the Go and process
	// collectors.
	Registry *prometheus.Registry
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
	if o.DriverFactory == nil {
		o.DriverFactory = DriverFactory(nil)
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
	return errors.Join(errs...)
}

// Combined is a running combined-mode process.
type Combined struct {
	Server *server.Server
	Node   *node.Node
	// HTTPAddr is the address the API and UI listen on (the real port when Listen asked for :0).
	HTTPAddr string
	app      *fx.App
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
		fx.Supply(opts, opts.env()),
		fx.Provide(newActorRuntime, newServer, newGatewayListener, newNode, newHTTP),
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

func newServer(lc fx.Lifecycle, o CombinedOptions, rt *actorRuntime) (*server.Server, error) {
	cfg := serverConfig(o.env(), rt, "cloud")
	cfg.DataDir = subdir(o.DataDir, "cloud")
	cfg.KeysDir = subdir(o.DataDir, "cloud-keys")
	cfg.AdminToken = o.AdminToken
	cfg.Combined = true
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
	// No drain here: the local node stops before the listener (fx stops in reverse), closing its streams.
	serveGateway(lc, gl.lis, gs, nil)
	return gl
}

func (gl *gatewayListener) dial(ctx context.Context) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///combined-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return gl.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func newNode(lc fx.Lifecycle, o CombinedOptions, rt *actorRuntime, gl *gatewayListener, srv *server.Server) (*node.Node, error) {
	cfg := nodeConfig(o.env(), rt, o.PollInterval, "node")
	cfg.NodeID = LocalNodeID
	cfg.OrgID = "default"
	cfg.DataDir = subdir(o.DataDir, "node")
	cfg.Devices = o.Devices
	// The local node owns exactly the configured devices; the server registers them from its reports.
	cfg.AcceptCloudOwnership = false
	cfg.Dial = gl.dial
	// The same gate as split mode: every command is verified with the org's ed25519 command keys (the
	// keyring persisted in the node store, started from the server's public keys at first run).
	cfg.CommandKeys = srv.Keys().Keys()
	cfg.DriverFactory = o.DriverFactory
	return startNode(lc, cfg)
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
}

// RunCombined runs combined mode against the miners in DevicesFile until ctx is done.
func RunCombined(ctx context.Context, o CombinedRunOptions, out io.Writer) error {
	if o.DataDir == "" {
		return errors.New("--data-dir is required: combined mode keeps its state there")
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
		Devices: devs, PollInterval: o.PollInterval, Logger: o.Logger})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hashfleet combined: %d miners, UI %s\n", len(devs), c.URL())
	if generated {
		fmt.Fprintf(out, "  admin token   %s   (generated; set %s or --admin-token to keep one)\n", token, AdminTokenEnv)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Stop(stopCtx)
}
