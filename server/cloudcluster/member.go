package cloudcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	etcdprovider "github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	testprovider "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// TestAgent is the in-memory membership that ProviderTest members of one process share.
type TestAgent = *testprovider.InMemAgent

// NewTestAgent returns a fresh in-memory membership for ProviderTest.
func NewTestAgent() TestAgent { return testprovider.NewInMemAgent() }

// env is what every grain and link of one member shares.
type env struct {
	cfg          Config
	log          *slog.Logger
	cluster      *cluster.Cluster
	leaseMetrics *lease.Metrics
	commands     CommandStore // nil: no org commands (commands_store.go)
	caller       *caller      // grain-to-grain calls off the mailboxes (commands_caller.go)
}

// Member is one cloud cluster member: a protoactor actor system with remoting, joined to the cluster through
// the configured provider, hosting Node and Lease grains (kinds "node" and "lease", placed by the disthash
// identity lookup), and serving its gateway's node streams through StreamLinks (Fleet).
type Member struct {
	env    *env
	system *actor.ActorSystem
	c      *cluster.Cluster
	fleet  *Fleet
	etcd   *etcdprovider.Provider // nil unless ProviderEtcd
	// retention is the history-retention actor (retention.go); nil when the store keeps no history.
	retention *actor.PID
	// sweeper wakes Org grains with overdue commands (commands_sweeper.go); nil without a command store.
	sweeper *actor.PID
	// keys reloads the shared command keys (keys_watcher.go); nil without them.
	keys *actor.PID

	mu      sync.Mutex
	stopped bool
}

// Start builds the member and joins the cluster. Stop leaves it.
func Start(cfg Config) (*Member, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: cfg.Logger.With(slog.String("component", "cloudcluster"))}
	var provider cluster.ClusterProvider
	var etcdP *etcdprovider.Provider
	switch cfg.Provider {
	case ProviderEtcd:
		eps := make([]string, len(cfg.EtcdEndpoints))
		for i, ep := range cfg.EtcdEndpoints {
			eps[i] = strings.TrimPrefix(ep, "http://")
		}
		p, err := etcdprovider.NewWithConfig(cfg.EtcdKeyPrefix, clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second,
			Logger: quietZap()})
		if err != nil {
			return nil, fmt.Errorf("cloud cluster: etcd %v: %w", eps, err)
		}
		provider, etcdP = p, p
	case ProviderTest:
		provider = testprovider.NewTestProvider(cfg.TestAgent)
	}
	system := actors.NewSystem(cfg.Logger)
	rcfg := remote.Configure(cfg.Host, cfg.Port)
	ccfg := cluster.Configure(cfg.ClusterName, provider, disthash.New(), rcfg,
		cluster.WithKinds(
			cluster.NewKind(KindNode, actor.PropsFromProducer(func() actor.Actor { return newNodeGrain(e) })),
			cluster.NewKind(KindLease, actor.PropsFromProducer(func() actor.Actor { return newLeaseGrain(e) })),
			cluster.NewKind(KindOrg, actor.PropsFromProducer(func() actor.Actor { return newOrgGrain(e) })),
			cluster.NewKind(KindMiner, actor.PropsFromProducer(func() actor.Actor { return newMinerGrain(e) })),
		),
		cluster.WithRequestTimeout(cfg.RequestTimeout),
		cluster.WithHeartbeatExpiration(cfg.HeartbeatExpiration),
	)
	c := cluster.New(system, ccfg)
	e.cluster = c
	e.commands = commandStoreOf(cfg)
	e.caller = newCaller(c, system, cfg, e.log)
	e.caller.start(cfg.CallWorkers)
	m := &Member{env: e, system: system, c: c, etcd: etcdP}
	m.fleet = newFleet(m)
	if err := startMember(c); err != nil {
		e.caller.close()
		system.Shutdown()
		m.closeEtcd()
		return nil, fmt.Errorf("cloud cluster: join %s via %s: %w", cfg.ClusterName, cfg.Provider, err)
	}
	if hs, ok := cfg.Store.(HistoryMaintainer); ok && !cfg.Retention.Disabled {
		m.retention = system.Root.Spawn(RetentionProps(cfg.Retention, hs, cfg.Clock, e.log))
	}
	if e.commands != nil {
		m.sweeper = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newCommandSweeper(e) }))
	}
	if ks, ok := cfg.Signer.(*OrgSigner); ok && ks.Shared() {
		m.keys = system.Root.Spawn(KeyWatcherProps(ks, cfg.Clock, cfg.KeyReload, e.log))
	}
	e.log.Info("cluster member started", slog.String("member", system.ID), slog.String("address", system.Address()),
		slog.String("provider", cfg.Provider))
	return m, nil
}

// startMember runs cluster.StartMember, which panics when the provider cannot register the member.
func startMember(c *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	c.StartMember()
	return nil
}

// Stop leaves the cluster: graceful deregisters from the provider and hands grains off (protoactor waits
// about 2s for ownership to move); otherwise the member just stops, as a crash would look to the others
// until the provider's TTL expires.
func (m *Member) Stop(graceful bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	if m.retention != nil {
		_ = m.system.Root.StopFuture(m.retention).Wait()
	}
	if m.sweeper != nil {
		_ = m.system.Root.StopFuture(m.sweeper).Wait()
	}
	if m.keys != nil {
		_ = m.system.Root.StopFuture(m.keys).Wait()
	}
	m.env.caller.close()
	m.c.Shutdown(graceful)
	if m.etcd != nil && !graceful {
		// A graceful shutdown deregistered already; otherwise stop the provider's keep-alive and watch loops
		// (the member's key then goes at once rather than at its TTL).
		_ = m.etcd.Shutdown(false)
	}
	m.closeEtcd()
	m.env.log.Info("cluster member stopped", slog.String("member", m.system.ID), slog.Bool("graceful", graceful))
}

func (m *Member) closeEtcd() {
	if m.etcd == nil {
		return
	}
	c, err := etcdClient(m.etcd)
	if err != nil {
		m.env.log.Warn("cannot close the etcd provider's client", slog.Any("err", err))
		return
	}
	_ = c.Close()
}

// ID is the member id (new for every process start).
func (m *Member) ID() string { return m.system.ID }

// Address is the member's remoting address (host:port).
func (m *Member) Address() string { return m.system.Address() }

// System is the member's actor system.
func (m *Member) System() *actor.ActorSystem { return m.system }

// Fleet is what this member's gateway (server/gateway.New) serves node streams through.
func (m *Member) Fleet() *Fleet { return m.fleet }

// Members lists the cluster members this member currently sees (ids).
func (m *Member) Members() []string {
	var out []string
	for _, x := range m.c.MemberList.Members().Members() {
		out = append(out, x.Id)
	}
	return out
}

func (m *Member) request(ctx context.Context, identity, kind string, msg proto.Message) (any, error) {
	if m.isStopped() {
		return nil, ErrNotStarted
	}
	timeout := m.env.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	res, err := m.c.Request(identity, kind, msg, cluster.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrRequest, kind, identity, err)
	}
	if res == nil {
		return nil, fmt.Errorf("%w: %s %s: no answer", ErrRequest, kind, identity)
	}
	return res, nil
}

func (m *Member) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// Command is an operator command for one node.
type Command struct {
	NodeID    string
	CommandID string
	Actor     string
	// Payload is a serialized pb.CommandPayload.
	Payload []byte
}

// Issue issues cmd through the node's Node grain, wherever it is: the command is persisted under a fresh
// seq from the shared counter before this returns, and sent to the member holding the node's stream, if
// any (else on the node's next hello).
func (m *Member) Issue(ctx context.Context, cmd Command) (*pb.ClusterIssueReply, error) {
	if err := store.ValidNodeID(cmd.NodeID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := store.ValidID(cmd.CommandID); err != nil {
		return nil, fmt.Errorf("%w: command id: %w", ErrInvalid, err)
	}
	res, err := m.request(ctx, cmd.NodeID, KindNode, &pb.ClusterIssueCommand{NodeId: cmd.NodeID, CommandId: cmd.CommandID,
		Actor: cmd.Actor, Payload: cmd.Payload, IssuedAtUnixMs: m.env.cfg.Clock.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.ClusterIssueReply)
	if !ok {
		return nil, fmt.Errorf("%w: node grain answered %T", ErrRequest, res)
	}
	if r.GetError() != "" {
		return r, fmt.Errorf("%w: %s", ErrRequest, r.GetError())
	}
	return r, nil
}

// NodeStatus asks the node's grain where it and the node's stream are.
func (m *Member) NodeStatus(ctx context.Context, node string) (*pb.ClusterNodeStatusReply, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := m.request(ctx, node, KindNode, &pb.ClusterNodeStatus{NodeId: node})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.ClusterNodeStatusReply)
	if !ok {
		return nil, fmt.Errorf("%w: node grain answered %T", ErrRequest, res)
	}
	return r, nil
}

// Lease sends a lease request to the pair's Lease grain; the answer is *pb.LeaseGrant or *pb.LeaseDenied.
func (m *Member) Lease(ctx context.Context, req *pb.LeaseRequest) (proto.Message, error) {
	if err := store.ValidNodeID(req.GetPairId()); err != nil {
		return nil, fmt.Errorf("%w: pair id: %w", ErrInvalid, err)
	}
	res, err := m.request(ctx, req.GetPairId(), KindLease, req)
	if err != nil {
		return nil, err
	}
	switch r := res.(type) {
	case *pb.LeaseGrant:
		return r, nil
	case *pb.LeaseDenied:
		return r, nil
	}
	return nil, fmt.Errorf("%w: lease grain answered %T", ErrRequest, res)
}

var errStopped = errors.New("member stopped")
