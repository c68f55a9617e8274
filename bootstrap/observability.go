package bootstrap

// Observability of every mode (hashfleet server, node run, combined, demo): the metrics and health server
// (metrics.go) started first and stopped last, serving the process registry, and the readiness checks each
// component registers.
//
// Readiness, by component:
//
//	cloud_store    the server's Badger store answers a read
//	cloud_actors   the fleet's actors are started and answer (the read model answers a query)
//	gateway        the gateway accepts node streams (not draining: a draining server is stopping or handing
//	               its nodes to another member, so a load balancer should send nodes elsewhere)
//	node_store     the node's Badger store answers a read
//	node_actors    the node's site supervisor, command gate and telemetry batcher answer
//	cloud_link     (informational) the node's session with the cloud is up
//
// A node whose cloud link is down is still ready: it keeps polling its miners, keeps the site's local UI and
// automation running and spools telemetry and events for the cloud (that is what it is for during a WAN
// outage), so restarting it or taking it out of rotation would only make things worse. cloud_link is reported
// on /readyz ("informational": true, with the error and since when) and alerted on through
// hashfleet_node_stream_up; liveness (/healthz) says only that the process answers.
//
// /status/ha: a node reports its warm-standby pair there (role active|standby|fenced, the holder, the epoch
// and, while active, when its writes must stop); a lone node answers {"pair": null}, and so does a server.

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/server"
	"go.uber.org/fx"
)

// MetricsListenOff as --metrics-listen turns the metrics and health server off.
const MetricsListenOff = "off"

// DefaultNodeMetricsListen is `hashfleet node run`'s default --metrics-listen: a port of its own, so a
// server (or combined mode) and a node on one host both start with their defaults.
const DefaultNodeMetricsListen = "127.0.0.1:9465"

// MetricsFlags registers the --metrics-* flags (MetricsConfig.RegisterFlags, defaults from
// DefaultMetricsConfig, --metrics-listen defaulting to listen) on fs. The returned func, called after
// fs.Parse, is the configuration: nil with --metrics-listen off.
func MetricsFlags(fs *flag.FlagSet, listen string) func() *MetricsConfig {
	mc := DefaultMetricsConfig()
	mc.Listen = listen
	mc.RegisterFlags(fs)
	return func() *MetricsConfig {
		if mc.Listen == MetricsListenOff {
			return nil
		}
		c := mc
		return &c
	}
}

// observability is one process's metrics and health server and its readiness checks.
type observability struct {
	cfg    *MetricsConfig // nil: no metrics server
	health *HealthChecks
	ha     HAStatusFunc
	server *MetricsServer // set once started
}

type metricsParam struct{ cfg *MetricsConfig }

// observe adds the metrics server to an fx app; place it before the components so it starts first (and
// /healthz answers while they start) and stops last.
func observe(cfg *MetricsConfig) fx.Option {
	return fx.Options(
		fx.Supply(metricsParam{cfg}),
		fx.Provide(newObservability),
		fx.Invoke(func(*observability) {}),
	)
}

// validateMetrics checks a metrics configuration before anything starts, so a refused one (a non-loopback
// address without auth) stops the process at once with the operator's message.
func validateMetrics(cfg *MetricsConfig) error {
	if cfg == nil {
		return nil
	}
	return cfg.withDefaults().Validate()
}

func newObservability(lc fx.Lifecycle, p metricsParam, env processEnv) *observability {
	o := &observability{cfg: p.cfg, health: NewHealthChecks()}
	if p.cfg == nil {
		return o
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			ms, err := StartMetrics(ctx, *p.cfg, env.Registry, o.health, env.Logger)
			if err != nil {
				return err
			}
			if o.ha != nil {
				ms.SetHAStatus(o.ha)
			}
			o.server = ms
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if o.server == nil {
				return nil
			}
			return o.server.Stop(ctx)
		},
	})
	return o
}

// serverChecks registers the server's readiness checks.
func serverChecks(o *observability, s *server.Server) {
	o.health.Register("cloud_store", s.CheckStore)
	o.health.Register("cloud_actors", s.CheckActors)
	o.health.Register("gateway", s.CheckGateway)
}

// nodeChecks registers the node's readiness checks and its /status/ha provider.
func nodeChecks(o *observability, n *node.Node) {
	o.health.Register("node_store", func(context.Context) error {
		if _, err := n.Audit(0, 1); err != nil {
			return fmt.Errorf("node store: %w", err)
		}
		return nil
	})
	o.health.Register("node_actors", func(ctx context.Context) error {
		if _, err := n.Gate(ctx); err != nil {
			return fmt.Errorf("command gate: %w", err)
		}
		if _, err := n.Telemetry(ctx); err != nil {
			return fmt.Errorf("telemetry batcher: %w", err)
		}
		if _, err := n.Miners(ctx); err != nil {
			return fmt.Errorf("site supervisor: %w", err)
		}
		return nil
	})
	o.health.RegisterInformational("cloud_link", func(ctx context.Context) error {
		st, err := n.LinkStatus(ctx)
		if err != nil {
			return err
		}
		if !st.Up {
			msg := "cloud link down"
			if !st.Since.IsZero() {
				msg += " since " + st.Since.UTC().Format(time.RFC3339)
			}
			if st.LastError != "" {
				msg += ": " + st.LastError
			}
			return fmt.Errorf("%s (the node runs its site and spools for the cloud meanwhile)", msg)
		}
		return nil
	})
	o.ha = func(ctx context.Context) (*HAStatus, error) {
		st, err := n.LeaseStatus(ctx)
		if err != nil {
			return nil, err
		}
		return haStatus(st), nil
	}
}

// haStatus is /status/ha's view of a node's pair: nil outside a pair. The role is the lease holder's mode:
// active while it may write (a cloud lease, or a local hold / local promotion with the WAN down), fenced
// while it stopped writing as the last holder (lapsed lease, handover, waiting for the cloud to confirm a
// transfer), standby otherwise, unknown while a restarted member waits for the cloud's pair info.
func haStatus(st node.PairStatus) *HAStatus {
	if !st.Paired {
		return nil
	}
	h := &HAStatus{PairID: st.PairID, Self: st.Lease.NodeID, Peer: st.Peer, Active: st.Holder, Epoch: st.Lease.Epoch, Role: "unknown"}
	if st.Pending {
		return h
	}
	switch st.Lease.Mode {
	case lease.ModeLease, lease.ModeLocalHold, lease.ModeLocalPromoted:
		h.Role, h.LeaseExpiry = "active", st.Lease.Permit.Until
	case lease.ModeFenced, lease.ModeConfirming:
		h.Role = "fenced"
	case lease.ModeStandby:
		h.Role = "standby"
	}
	return h
}

// addr is the metrics server's bound address ("" when it is off or not started).
func (o *observability) addr() string {
	if o == nil || o.server == nil {
		return ""
	}
	return o.server.Addr()
}

// describe is the start-up line naming where /metrics is served.
func (o *observability) describe() string {
	if o == nil || o.server == nil {
		return "off (--" + FlagMetricsListen + " " + MetricsListenOff + ")"
	}
	scheme := "http"
	if o.server.setup.tls != nil {
		scheme = "https"
	}
	auth := "loopback, no auth"
	switch c := o.server.setup.cfg; {
	case c.basicAuth() && c.clientCert():
		auth = "basic auth + client certificates"
	case c.basicAuth():
		auth = "basic auth"
	case c.clientCert():
		auth = "client certificates"
	}
	return fmt.Sprintf("%s://%s/metrics   (%s; /healthz /readyz /status/ha)", scheme, o.server.Addr(), auth)
}

// MetricsAddr is the metrics server's bound address ("" without one).
func (p *ServerProcess) MetricsAddr() string { return p.obs.addr() }

// MetricsAddr is the metrics server's bound address ("" without one).
func (p *NodeProcess) MetricsAddr() string { return p.obs.addr() }

// MetricsAddr is the metrics server's bound address ("" without one).
func (c *Combined) MetricsAddr() string { return c.obs.addr() }
