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
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"google.golang.org/grpc"
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
	// so commands issued on any member reach them. It trusts the node-id metadata (as combined mode does),
	// so it is refused on anything but a loopback address. "off" disables it. Default 127.0.0.1:7602.
	GatewayListen string
	// ClusterName: members with one name form one cluster. Default "hashfleet".
	ClusterName string
}

// ClusterMember is a running member and its listeners.
type ClusterMember struct {
	Member      *cloudcluster.Member
	Store       *pgstore.Store
	HTTPAddr    string
	GatewayAddr string
	gw          *gateway.Gateway
	grpc        *grpc.Server
	http        *http.Server
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
	if o.GatewayListen != "off" {
		host, _, err := net.SplitHostPort(o.GatewayListen)
		a, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || !a.Unmap().IsLoopback() {
			errs = append(errs, fmt.Errorf("cluster: --cluster-gateway-listen %q must be a loopback host:port (it trusts the node-id metadata) or \"off\"", o.GatewayListen))
		}
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

// StartClusterMember opens the shared store (migrating it forward), joins the cluster and starts serving.
func StartClusterMember(ctx context.Context, o ClusterOptions, adminToken string, log *slog.Logger) (*ClusterMember, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	st, err := pgstore.Open(ctx, pgstore.Config{DSN: o.PostgresDSN, Logger: log})
	if err != nil {
		return nil, err
	}
	host, portS, _ := net.SplitHostPort(o.Listen)
	port, err := strconv.Atoi(portS)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("cluster: --cluster-listen port %q: %w", portS, err)
	}
	cfg := cloudcluster.DefaultConfig()
	cfg.Host, cfg.Port, cfg.EtcdEndpoints, cfg.Store, cfg.LeaseStore, cfg.Logger = host, port, o.EtcdEndpoints, st, st, log
	if o.ClusterName != "" {
		cfg.ClusterName = o.ClusterName
	}
	m, err := cloudcluster.Start(cfg)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	cm := &ClusterMember{Member: m, Store: st}
	hl, err := net.Listen("tcp", o.HTTPListen)
	if err != nil {
		cm.stopMember()
		return nil, fmt.Errorf("cluster: listen %s: %w", o.HTTPListen, err)
	}
	cm.HTTPAddr = hl.Addr().String()
	cm.http = &http.Server{Handler: m.Handler(adminToken), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cm.http.Serve(hl) }()
	if o.GatewayListen != "off" {
		gcfg := gateway.DefaultConfig()
		gcfg.Authenticator, gcfg.Logger = gateway.TrustNodeMetadata(), log
		if cm.gw, err = gateway.New(gcfg, m.Fleet()); err != nil {
			cm.Stop(ctx)
			return nil, err
		}
		gl, err := net.Listen("tcp", o.GatewayListen)
		if err != nil {
			cm.Stop(ctx)
			return nil, fmt.Errorf("cluster: listen %s: %w", o.GatewayListen, err)
		}
		cm.GatewayAddr = gl.Addr().String()
		cm.grpc = grpc.NewServer(gateway.ServerOptions(gcfg)...)
		pb.RegisterGatewayServer(cm.grpc, cm.gw)
		go func() { _ = cm.grpc.Serve(gl) }()
	}
	return cm, nil
}

// Describe prints the member's addresses.
func (c *ClusterMember) Describe(out io.Writer) {
	fmt.Fprintf(out, "  cluster member %s (remoting %s)\n", c.Member.ID(), c.Member.Address())
	fmt.Fprintf(out, "  cluster API    http://%s/cluster/v1 (admin token)\n", c.HTTPAddr)
	if c.GatewayAddr != "" {
		fmt.Fprintf(out, "  cluster gw     %s (loopback, node-id metadata)\n", c.GatewayAddr)
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
