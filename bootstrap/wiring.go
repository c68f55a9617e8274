package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"google.golang.org/grpc"
)

// The pieces every mode is wired from: combined mode and split mode (hashfleet server, hashfleet node run)
// call the same functions, so a server or node is configured one way whichever process it runs in.

// processEnv is what every component of a process shares: its clock, logger and metrics registry.
type processEnv struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Registry *prometheus.Registry
}

// actorRuntime is the ActorSystem and actor metrics the components of one process share.
type actorRuntime struct {
	System  *actor.ActorSystem
	Metrics *actors.Metrics
}

func newActorRuntime(lc fx.Lifecycle, env processEnv) *actorRuntime {
	rt := &actorRuntime{System: actors.NewSystem(env.Logger), Metrics: actors.NewMetrics(env.Registry)}
	lc.Append(fx.StopHook(rt.System.Shutdown))
	return rt
}

// serverConfig is the server configuration common to every mode; the caller sets the mode's own fields
// (DataDir, KeysDir, Combined, AdminToken, ...).
func serverConfig(env processEnv, rt *actorRuntime, half string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Clock = env.Clock
	cfg.Logger = env.Logger
	if half != "" {
		cfg.Logger = env.Logger.With(slog.String("half", half))
	}
	cfg.Registerer = env.Registry
	cfg.System, cfg.ActorMetrics = rt.System, rt.Metrics
	return cfg
}

// startServer builds the server and ties it to the lifecycle: Start on start, Stop (goaway to every node
// stream, actors, store) on stop.
func startServer(lc fx.Lifecycle, cfg server.Config) (*server.Server, error) {
	srv, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: srv.Start, OnStop: srv.Stop})
	return srv, nil
}

// nodeConfig is the node configuration common to every mode; the caller sets the mode's own fields
// (NodeID, DataDir, Dial, devices, trust).
func nodeConfig(env processEnv, rt *actorRuntime, pollInterval time.Duration, half string) node.Config {
	cfg := node.DefaultConfig()
	if pollInterval > 0 {
		cfg.PollInterval = pollInterval
		cfg.PollJitter = pollInterval / 10
	}
	cfg.DriverFactory = DriverFactory(nil)
	cfg.Clock = env.Clock
	cfg.Logger = env.Logger
	if half != "" {
		cfg.Logger = env.Logger.With(slog.String("half", half))
	}
	cfg.Registerer = env.Registry
	cfg.ActorMetrics = rt.Metrics
	cfg.System = rt.System
	cfg.SoftwareVersion = Version
	return cfg
}

// startNode builds the node and ties it to the lifecycle.
func startNode(lc fx.Lifecycle, cfg node.Config) (*node.Node, error) {
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: n.Start, OnStop: n.Stop})
	return n, nil
}

// serveGateway serves the gateway's grpc.Server on lis. On stop it first drains (ControlGoaway to every
// node stream, then waits for the streams to end), then stops the gRPC server, gracefully unless ctx ends.
func serveGateway(lc fx.Lifecycle, lis net.Listener, gs *grpc.Server, drain func(context.Context) error) {
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				_ = gs.Serve(lis)
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			var err error
			if drain != nil {
				err = drain(ctx)
			}
			stopGRPC(ctx, gs)
			<-done
			return err
		},
	})
}

// stopGRPC stops gracefully, or hard when ctx ends first.
func stopGRPC(ctx context.Context, gs *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		gs.Stop()
		<-stopped
	}
}

type httpServer struct {
	addr string
}

// serveHTTP listens on listen and serves h (the API and UI) for the lifetime of the app.
func serveHTTP(lc fx.Lifecycle, log *slog.Logger, listen string, h http.Handler) (*httpServer, error) {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for the API and UI: %w", listen, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("HTTP server stopped", slog.Any("err", err))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			err := hs.Shutdown(ctx)
			if err != nil {
				_ = hs.Close()
			}
			<-done
			return err
		},
	})
	return &httpServer{addr: lis.Addr().String()}, nil
}

// isLoopbackHost reports whether host (a name or IP, no port) can only be reached from this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
