package server

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/artifacts"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/history"
	"github.com/hashfleet/hashfleet/server/keys"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/registry"
	"github.com/hashfleet/hashfleet/server/rollout"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/ui"
	"github.com/hashfleet/hashfleet/server/users"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Config configures the cloud server. Zero values of optional fields take the documented defaults.
type Config struct {
	// DataDir holds the Badger store; "" keeps everything in memory (tests, demo).
	DataDir string
	// AdminToken is the bearer token of the operator API. Required, at least 16 bytes.
	AdminToken string
	// Clock is business time (staleness, command timeouts). Default the wall clock.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's hashfleet_server_* series (and hashfleet_actors_* unless ActorMetrics
	// is given). Nil: not registered.
	Registerer prometheus.Registerer
	// StaleAfter: a miner whose latest sample is older than this, or whose node's control stream is down,
	// is shown stale. Default 30s.
	StaleAfter time.Duration
	// CommandTimeout: a miner with no final result this long after its command was issued is marked
	// timeout. Default 60s.
	CommandTimeout time.Duration
	// Lease times warm-standby pair leases (TTL, renew interval, margin, heartbeat timeout). Zero:
	// lease.DefaultConfig() (6s, 2s, 1s, 6s). Nodes must use matching timings.
	Lease lease.Config
	// Combined selects combined mode: the gateway trusts the x-hashfleet-node metadata with no token
	// (CombinedAuthenticator) and the local node's reported devices are registered to it without pairing.
	// Only for a gateway listener no other host can reach. Default false: split mode, where nodes enroll
	// (server/registry) and every stream needs a session token.
	Combined bool
	// Authenticator overrides the gateway's authenticator. Nil: CombinedAuthenticator() when Combined,
	// otherwise session tokens (gateway.SessionAuthenticator over the registry, whose expiry also ends open
	// streams; an override has no such expiry).
	Authenticator gateway.Authenticator
	// MaxRecvMsgSize bounds one gateway frame in bytes (apply with GRPCServerOptions). Default 4 MiB.
	MaxRecvMsgSize int
	// MaxBodyBytes bounds an API request body. Default 1 MiB.
	MaxBodyBytes int64
	// ArtifactsDir holds the content-addressed artifact store. "": DataDir/artifacts; none without a DataDir.
	ArtifactsDir string
	// RolloutPollInterval is how often a rolling firmware update reads its batch's command. Default 1s.
	RolloutPollInterval time.Duration
	// MaxArtifactBytes bounds one artifact (firmware image, log bundle). 0: artifacts.DefaultMaxSize (512 MiB).
	MaxArtifactBytes int64
	// ArtifactRetention: an artifact not used (uploaded or fetched) for this long is deleted by the hourly
	// sweep, unless a command or rollout still running needs it. 0: 90 days; negative: kept forever.
	ArtifactRetention time.Duration
	// MaxArtifactStoreBytes caps the artifact store; beyond it the least recently used artifacts not in use go.
	// 0: no cap.
	MaxArtifactStoreBytes int64
	// DrainReconnectAfter is what the shutdown goaway tells nodes to wait before reconnecting. Default 2s.
	DrainReconnectAfter time.Duration
	// OrgID names the single org this server runs. Default "default".
	OrgID string
	// Supervisor bounds restarts of node and miner actors. Default actors.DefaultSupervisorConfig().
	Supervisor actors.SupervisorConfig
	// System runs the actors. Nil: the server makes its own and shuts it down in Stop.
	System *actor.ActorSystem
	// ActorMetrics counts actors by kind; pass the process's one when node and server share a registry
	// (combined mode). Nil: made on Registerer.
	ActorMetrics *actors.Metrics
	// Signer overrides the command signer (tests). Nil: the org's issuance keys (server/keys) in KeysDir sign
	// every command, and the key lifecycle API manages them.
	Signer grains.Signer
	// KeysDir holds the org's command-issuance keys (0600 files). "" keeps them in memory (tests, demo).
	KeysDir string
	// SessionTTL is the lifetime of a node session token (split mode). Default 1h.
	SessionTTL time.Duration
	// CodeTTL is the default lifetime of an enrollment code. Default 24h.
	CodeTTL time.Duration
	// DebugInject enables POST /api/v1/nodes/{id}/inject (raw commands on a node's stream, to show the
	// node refuses what it must). Never on in production. Default false.
	DebugInject bool
	// NodeKeys returns a node's credential public key, which pairing and discovery credentials are sealed to.
	// Nil: the node's enrollment record (split mode); combined mode passes the local node's.
	NodeKeys func(nodeID string) (credentials.NodeKey, error)
	// IssueClientCert issues a node's TLS client certificate at enrollment (tlsca.CA.IssueClientCert), for
	// the TLS key in its EnrollRequest. Nil: none issued (a gateway without TLS). Split mode only.
	IssueClientCert func(nodeID string, pub crypto.PublicKey, now time.Time) ([]byte, error)
	// RequireClientCert turns on mTLS checks at the gateway (gateway.Config.RequireClientCert): streams,
	// Challenge and OpenSession need a verified client certificate naming the node. The gateway's TLS
	// listener must verify given client certificates (tlsca.VerifyClientCertIfGiven). Default false.
	RequireClientCert bool
	// History sets telemetry history retention and limits (server/history.Config: raw samples 24h, 1-minute
	// rollups 30 days, 1-hour rollups 400 days by default). Dir is ignored: the history lives in
	// <DataDir>/history, or in memory without a DataDir.
	History history.Config
	// Users sets sessions and login limits (server/users.Config: 12h sessions, 1h idle, 5 failed logins per
	// user or client in 15m lock it out for 1m, doubling). While no admin user exists, user "admin" signs in
	// with AdminToken as its password, which creates it; the token itself always stays an admin API key.
	Users users.Config
	// SecureCookies marks the UI session cookie Secure on a plain-HTTP listener (TLS in front). Default false;
	// over TLS the cookie is always Secure.
	SecureCookies bool
}

// DefaultConfig returns the documented defaults; AdminToken must still be set.
func DefaultConfig() Config {
	return Config{
		Clock:               clock.Real(),
		StaleAfter:          30 * time.Second,
		CommandTimeout:      60 * time.Second,
		MaxRecvMsgSize:      gateway.DefaultMaxRecvMsgSize,
		MaxBodyBytes:        api.DefaultMaxBodyBytes,
		DrainReconnectAfter: 2 * time.Second,
		OrgID:               "default",
		Supervisor:          actors.DefaultSupervisorConfig(),
	}
}

// withDefaults fills zero optional fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = d.StaleAfter
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = d.CommandTimeout
	}
	if c.MaxRecvMsgSize == 0 {
		c.MaxRecvMsgSize = d.MaxRecvMsgSize
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.DrainReconnectAfter == 0 {
		c.DrainReconnectAfter = d.DrainReconnectAfter
	}
	if c.OrgID == "" {
		c.OrgID = d.OrgID
	}
	if c.Supervisor == (actors.SupervisorConfig{}) {
		c.Supervisor = d.Supervisor
	}
	return c
}

// Validate reports a configuration an operator must fix (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.AdminToken) < api.MinTokenLen {
		errs = append(errs, fmt.Errorf("server: AdminToken must be at least %d bytes (got %d)", api.MinTokenLen, len(c.AdminToken)))
	}
	if c.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("server: StaleAfter %s is negative", c.StaleAfter))
	}
	if c.CommandTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: CommandTimeout %s is negative", c.CommandTimeout))
	}
	if c.MaxRecvMsgSize < 64<<10 {
		errs = append(errs, fmt.Errorf("server: MaxRecvMsgSize %d is below 64 KiB", c.MaxRecvMsgSize))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("server: MaxBodyBytes %d is below 1 KiB", c.MaxBodyBytes))
	}
	if err := c.Supervisor.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	if err := c.History.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	if err := c.Users.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	if err := store.ValidNodeID(c.OrgID); err != nil {
		errs = append(errs, fmt.Errorf("server: OrgID: %w", err))
	}
	if c.Combined && c.RequireClientCert {
		errs = append(errs, errors.New("server: RequireClientCert (mTLS) is for split mode's TLS gateway, not combined mode"))
	}
	return errors.Join(errs...)
}

// CombinedAuthenticator trusts the x-hashfleet-node metadata as is: combined mode, where the node is this
// process or on loopback. Choose it explicitly (Config.Combined or Config.Authenticator).
func CombinedAuthenticator() gateway.Authenticator { return gateway.TrustNodeMetadata() }

// Server is the cloud control plane of one org: gateway, actors, store, API and UI. The bootstrap owns the
// listeners: it registers Gateway() on its grpc.Server (made with GRPCServerOptions()) and serves Handler().
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Badger
	system    *actor.ActorSystem
	ownSystem bool
	keys      *keys.Manager      // nil when Config.Signer overrides
	vault     *credentials.Vault // device logins, sealed per owning node, in the store under "cred/"
	registry  *registry.Registry // nil in combined mode
	history   *history.History
	users     *users.Service
	fleet     *grains.Fleet
	gw        *gateway.Gateway
	artifacts *artifacts.Service // nil without a DataDir
	sweeper   *artifacts.Sweeper // the artifact store's retention; nil without a store
	rollouts  *rollout.Manager
	api       *api.API
	handler   http.Handler

	mu      sync.Mutex
	started bool
	stopped bool
}

// New opens the store and builds the server; Start starts the actors.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(slog.String("component", "server"))
	st, err := store.Open(store.Options{Dir: cfg.DataDir, Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: log, store: st, system: cfg.System}
	if s.system == nil {
		s.system, s.ownSystem = actors.NewSystem(cfg.Logger), true
	}
	am := cfg.ActorMetrics
	if am == nil {
		am = actors.NewMetrics(cfg.Registerer)
	}
	signer := cfg.Signer
	if signer == nil {
		if s.keys, err = keys.Open(keys.Config{Dir: cfg.KeysDir, OrgID: cfg.OrgID, Clock: cfg.Clock, Logger: cfg.Logger}, cfg.Clock.Now()); err != nil {
			s.closeEarly()
			return nil, fmt.Errorf("server: %w", err)
		}
		signer = s.keys
	}
	gcfg := grains.DefaultConfig()
	gcfg.OrgID, gcfg.Store, gcfg.Clock, gcfg.Logger = cfg.OrgID, st, cfg.Clock, log
	gcfg.Metrics, gcfg.ActorMetrics, gcfg.Supervisor = grains.NewMetrics(cfg.Registerer, cfg.Clock), am, cfg.Supervisor
	gcfg.StaleAfter, gcfg.CommandTimeout, gcfg.TrustNodeDevices, gcfg.Signer = cfg.StaleAfter, cfg.CommandTimeout, cfg.Combined, signer
	if s.keys != nil {
		gcfg.Keys = s.keys
		gcfg.PolicySigner = policySigner(s.keys, cfg.Clock)
	}
	if !cfg.Combined {
		gcfg.SiteNodes = siteNodes(st)
	}
	if s.vault, err = credentials.New(credentials.NewBadgerStore(st.DB()), credentials.Config{Clock: cfg.Clock, Logger: log}); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	gcfg.Vault, gcfg.NodeKey = s.vault, cfg.NodeKeys
	if s.history, err = openHistory(cfg); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	gcfg.History = s.history
	if s.users, err = openUsers(cfg, st); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	if gcfg.NodeKey == nil {
		gcfg.NodeKey = func(id string) (credentials.NodeKey, error) {
			rec, err := st.NodeRecord(id)
			if err != nil {
				return credentials.NodeKey{}, err
			}
			return credentials.KeyFromRecord(rec)
		}
	}
	gcfg.LeaseMetrics = lease.NewMetrics(cfg.Registerer)
	if cfg.Lease != (lease.Config{}) {
		gcfg.Lease = cfg.Lease
	}
	if !cfg.Combined {
		gcfg.NodeRecord = st.NodeRecord // warm-standby pairs check enrollment and seal the pair key
	}
	if s.fleet, err = grains.New(gcfg, s.system); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	wcfg := gateway.DefaultConfig()
	switch {
	case cfg.Authenticator != nil:
		wcfg.Authenticator = cfg.Authenticator
	case cfg.Combined:
		wcfg.Authenticator = CombinedAuthenticator()
	}
	if !cfg.Combined {
		if s.registry, err = newRegistry(cfg, st, signer); err != nil {
			s.closeEarly()
			return nil, fmt.Errorf("server: %w", err)
		}
		wcfg.Enrollment = s.registry
		wcfg.Hello = func(_ context.Context, node string, h *pb.ControlHello) error {
			return s.registry.AnnounceMinerKey(node, h.GetMinerSigningPublicKey(), h.GetMinerSigningKeySignature())
		}
		wcfg.RequireClientCert = cfg.RequireClientCert
		if wcfg.Authenticator == nil {
			// Session tokens expire on open streams; an overriding Authenticator brings its own rules.
			wcfg.Authenticator, wcfg.Sessions = gateway.SessionAuthenticator(s.registry), s.registry
		}
	}
	wcfg.MaxRecvMsgSize, wcfg.DrainReconnectAfter = cfg.MaxRecvMsgSize, cfg.DrainReconnectAfter
	wcfg.Clock, wcfg.Logger, wcfg.Metrics, wcfg.ActorMetrics = cfg.Clock, log, gateway.NewMetrics(cfg.Registerer), am
	if s.gw, err = gateway.New(wcfg, s.fleet); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.artifacts, err = newArtifacts(cfg, s.gw, s.fleet); err != nil {
		s.closeEarly()
		return nil, err
	}
	acfg := api.DefaultConfig()
	acfg.AdminToken, acfg.MaxBodyBytes, acfg.Clock, acfg.Logger, acfg.Metrics = cfg.AdminToken, cfg.MaxBodyBytes, cfg.Clock, log, api.NewMetrics(cfg.Registerer)
	acfg.Devices, acfg.DebugInject = s.fleet, cfg.DebugInject
	acfg.Commissioning, acfg.Conflicts = s.fleet, s.fleet
	acfg.Sites = s.fleet
	acfg.Artifacts = apiArtifacts(s.artifacts)
	if s.rollouts, err = newRollouts(cfg, s.fleet, s.store); err != nil {
		s.closeEarly()
		return nil, err
	}
	acfg.Rollouts = s.rollouts
	if s.sweeper, err = newArtifactSweeper(cfg, s.artifacts, s.store, s.rollouts); err != nil {
		s.closeEarly()
		return nil, err
	}
	if !cfg.Combined {
		acfg.Pairs = s.fleet
	}
	acfg.Users, acfg.History, acfg.SecureCookies = s.users, s.history, cfg.SecureCookies
	if s.registry != nil {
		acfg.Enrollment = s.registry
		acfg.Credentials = credentialAdmin{s}
	}
	if s.keys != nil {
		acfg.Keys = &keyLifecycle{keys: s.keys, fleet: s.fleet, reg: s.registry, clk: cfg.Clock, org: cfg.OrgID}
	}
	if s.api, err = api.New(acfg, s.fleet); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", s.api.Handler())
	mux.Handle("/", ui.Handler())
	s.handler = mux
	return s, nil
}

func (s *Server) closeEarly() {
	if s.ownSystem {
		s.system.Shutdown()
	}
	if s.history != nil {
		_ = s.history.Close()
	}
	_ = s.store.Close()
}

// Start starts the actors: the org loads devices, telemetry, commands and node queues from the store.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("server: stopped")
	}
	if s.started {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.fleet.Start(); err != nil {
		return fmt.Errorf("server: start: %w", err)
	}
	if err := s.rollouts.Resume(); err != nil {
		s.log.Error("stored rollouts not resumed", slog.Any("error", err))
	}
	if s.sweeper != nil {
		s.sweeper.Start()
	}
	s.started = true
	s.log.Info("server started", slog.String("data_dir", s.cfg.DataDir), slog.Bool("combined", s.cfg.Combined),
		slog.Bool("debug_inject", s.cfg.DebugInject))
	return nil
}

// Stop drains the gateway (ControlGoaway to every control stream), stops the actors, shuts down the actor
// system if the server made it, and closes the store. Safe to call more than once, and without Start.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if err := s.gw.Drain(ctx); err != nil {
		errs = append(errs, err)
	}
	s.rollouts.Stop()
	if s.sweeper != nil {
		s.sweeper.Stop()
	}
	if err := s.fleet.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.ownSystem {
		s.system.Shutdown()
	}
	if err := s.history.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("server stopped")
	return errors.Join(errs...)
}

// Gateway is the gRPC service nodes connect to; register it with pb.RegisterGatewayServer.
func (s *Server) Gateway() pb.GatewayServer { return s.gw }

// Drain sends ControlGoaway to every node stream and waits for the streams to end (Stop does it too).
func (s *Server) Drain(ctx context.Context) error { return s.gw.Drain(ctx) }

// GRPCServerOptions are the options the bootstrap's grpc.Server needs for the gateway's contract
// (MaxRecvMsgSize, keepalive policy).
func (s *Server) GRPCServerOptions() []grpc.ServerOption {
	c := gateway.DefaultConfig()
	c.MaxRecvMsgSize = s.cfg.MaxRecvMsgSize
	return gateway.ServerOptions(c)
}

// Handler serves the operator API under /api/v1 and the UI at /.
func (s *Server) Handler() http.Handler { return s.handler }

// Fleet is the actors' client (the bootstrap's pairing flow and tests register devices through it).
func (s *Server) Fleet() *grains.Fleet { return s.fleet }

// Store is the server's store (read-only inspection).
func (s *Server) Store() store.Store { return s.store }

// Registry is the node registry (nil in combined mode).
func (s *Server) Registry() *registry.Registry { return s.registry }

// Vault is the credential vault (device logins sealed per owning node).
func (s *Server) Vault() *credentials.Vault { return s.vault }

// Keys are the org's command-issuance keys (nil when Config.Signer overrides them).
func (s *Server) Keys() *keys.Manager { return s.keys }

// newRegistry builds split mode's node registry: enrollment codes and the server secret in the store (so
// codes and sessions survive a restart), challenges in memory (they live a minute).
func newRegistry(cfg Config, st *store.Badger, signer grains.Signer) (*registry.Registry, error) {
	secret, err := enroll.LoadOrCreateSecret(st)
	if err != nil {
		return nil, err
	}
	svc, err := enroll.New(enroll.DefaultConfig(), secret, st, enroll.NewMemStore())
	if err != nil {
		return nil, err
	}
	rcfg := registry.DefaultConfig()
	rcfg.OrgID, rcfg.Clock, rcfg.Logger, rcfg.Keys = cfg.OrgID, cfg.Clock, cfg.Logger, signer.Keys
	rcfg.IssueClientCert = cfg.IssueClientCert
	if cfg.SessionTTL != 0 {
		rcfg.SessionTTL = cfg.SessionTTL
	}
	if cfg.CodeTTL != 0 {
		rcfg.CodeTTL = cfg.CodeTTL
	}
	return registry.New(rcfg, svc, st)
}

// keyLifecycle is the API's view of the key lifecycle: changes go through the Org actor, which queues the
// signed announcement or revocation to every enrolled node and every node it knows.
type keyLifecycle struct {
	keys  *keys.Manager
	fleet *grains.Fleet
	reg   *registry.Registry
	clk   clock.Clock
	org   string
}

func (k *keyLifecycle) List() []signing.KeyInfo { return k.keys.List(k.clk.Now()) }

func (k *keyLifecycle) nodes() ([]string, error) {
	if k.reg == nil {
		return nil, nil
	}
	return k.reg.ConfirmedNodes()
}

func (k *keyLifecycle) Rotate(ctx context.Context, overlap time.Duration) (grains.KeyChange, error) {
	nodes, err := k.nodes()
	if err != nil {
		return grains.KeyChange{}, err
	}
	return k.fleet.RotateKeys(ctx, overlap, nodes)
}

func (k *keyLifecycle) Revoke(ctx context.Context, keyID string) (grains.KeyChange, error) {
	if !strings.Contains(keyID, "/") {
		keyID = k.org + "/" + keyID // the local part alone ("k_…")
	}
	nodes, err := k.nodes()
	if err != nil {
		return grains.KeyChange{}, err
	}
	return k.fleet.RevokeKey(ctx, keyID, nodes)
}
