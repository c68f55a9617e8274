package cloudcluster

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/registry"
	"github.com/hashfleet/hashfleet/server/tlsca"
)

// Node authentication on a cluster member's gateway, as split mode's (docs/CLUSTER.md, "Security"):
//
//	Enroll ──▶ any member ─┐                       enrollment codes, node records,
//	Challenge ─▶ any member ├─ registry.Registry ──▶ session challenges: Postgres (shared)
//	OpenSession ▶ any member┘  (one per member)     enrollment secret, CA, keys: cluster_secrets (sealed)
//	streams ──▶ any member: session token + client certificate (mTLS), verified against the shared store
//
// Every member keys sessions with the one enrollment secret, so a token minted on one member verifies on
// all; challenges are taken from the shared table, so a nonce issued by one member is answered on another
// once. Revocation writes the shared node record (every member refuses the node's next session and
// stream) and then asks every member's auth actor to end the node's open streams now.

// AuthStore is what a member's registry needs from the shared store (server/pgstore.Store).
type AuthStore interface {
	registry.Store
	enroll.CodeStore
	enroll.ChallengeStore
}

// AuthConfig configures a member's node authentication.
type AuthConfig struct {
	// Secrets are the shared secrets (OpenSecrets). Required.
	Secrets *Secrets
	// Store is the shared store. Required.
	Store AuthStore
	// CA issues node client certificates at enrollment (Secrets.CA). Nil: none (a gateway without TLS, on
	// loopback).
	CA *tlsca.CA
	// OrgID is the org codes are minted for; must match the org of Secrets' keys. Default "default".
	OrgID string
	// SessionTTL is a session token's lifetime. Default 1h.
	SessionTTL time.Duration
	// CodeTTL is an enrollment code's default lifetime. Default 24h.
	CodeTTL time.Duration
	// CutTimeout bounds the wait for one member to end a revoked node's streams. Default 2s.
	CutTimeout time.Duration
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Validate reports what must be fixed (after defaults).
func (c AuthConfig) Validate() error {
	var errs []error
	if c.Secrets == nil || c.Secrets.Signer == nil {
		errs = append(errs, fmt.Errorf("%w: auth needs the shared Secrets", ErrConfig))
	}
	if c.Store == nil {
		errs = append(errs, fmt.Errorf("%w: auth needs the shared Store", ErrConfig))
	}
	if c.SessionTTL < 0 || c.CodeTTL < 0 || c.CutTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: auth durations must not be negative", ErrConfig))
	}
	return errors.Join(errs...)
}

func (c AuthConfig) withDefaults() AuthConfig {
	if c.OrgID == "" {
		c.OrgID = "default"
	}
	if c.CutTimeout == 0 {
		c.CutTimeout = 2 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// authActorName is the name of every member's auth actor (its PID is address + this name).
const authActorName = "hashfleet-auth"

// Auth is one member's node authentication: the registry over the shared store, and the member's part
// of revocation.
type Auth struct {
	cfg AuthConfig
	m   *Member
	reg *registry.Registry
	pid *actor.PID
	log *slog.Logger

	mu  sync.Mutex
	gws []*gateway.Gateway
}

// NewAuth builds m's node authentication and starts its auth actor (stopped with the member).
func (m *Member) NewAuth(cfg AuthConfig) (*Auth, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svc, err := enroll.New(enroll.DefaultConfig(), cfg.Secrets.EnrollSecret, cfg.Store, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("cluster auth: %w", err)
	}
	rcfg := registry.DefaultConfig()
	rcfg.OrgID, rcfg.Clock, rcfg.Logger, rcfg.Keys = cfg.OrgID, cfg.Clock, cfg.Logger, cfg.Secrets.Signer.Keys
	if cfg.CA != nil {
		rcfg.IssueClientCert = cfg.CA.IssueClientCert
	}
	if cfg.SessionTTL != 0 {
		rcfg.SessionTTL = cfg.SessionTTL
	}
	if cfg.CodeTTL != 0 {
		rcfg.CodeTTL = cfg.CodeTTL
	}
	reg, err := registry.New(rcfg, svc, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("cluster auth: %w", err)
	}
	a := &Auth{cfg: cfg, m: m, reg: reg, log: cfg.Logger.With(slog.String("component", "cluster-auth"))}
	pid, err := m.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newAuthActor(a) }), authActorName)
	if err != nil {
		return nil, fmt.Errorf("cluster auth: spawn %s: %w", authActorName, err)
	}
	a.pid = pid
	return a, nil
}

// Registry is the member's node registry over the shared store.
func (a *Auth) Registry() *registry.Registry { return a.reg }

// GatewayConfig returns c set up for authenticated nodes: Enroll, Challenge and OpenSession answered by the
// registry, every stream needing a session token (expiring on open streams), announced miner keys checked,
// and with requireClientCert the node's client certificate (mTLS) on everything but Enroll.
func (a *Auth) GatewayConfig(c gateway.Config, requireClientCert bool) gateway.Config {
	c.Enrollment, c.Sessions = a.reg, a.reg
	c.Authenticator = gateway.SessionAuthenticator(a.reg)
	c.RequireClientCert = requireClientCert
	c.Hello = func(_ context.Context, node string, h *pb.ControlHello) error {
		return a.reg.AnnounceMinerKey(node, h.GetMinerSigningPublicKey(), h.GetMinerSigningKeySignature())
	}
	return c
}

// AttachGateway makes revocations end gw's streams of the revoked node (on this member, and when any other
// member revokes).
func (a *Auth) AttachGateway(gw *gateway.Gateway) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gws = append(a.gws, gw)
}

// cutLocal ends node's streams on this member's gateways.
func (a *Auth) cutLocal(node, reason string) int {
	a.mu.Lock()
	gws := append([]*gateway.Gateway(nil), a.gws...)
	a.mu.Unlock()
	n := 0
	for _, gw := range gws {
		n += gw.CutNode(node, reason)
	}
	return n
}

// RevokeResult is what a revocation did.
type RevokeResult struct {
	// StreamsCut counts the streams ended on every member that answered.
	StreamsCut int
	// Unreached lists members that did not answer (their gateways refuse the node from its next session
	// refresh or stream on, through the shared record).
	Unreached []string
}

// Revoke revokes node in the shared registry (every member refuses its next session and stream), then asks
// every member to end its open streams now.
func (a *Auth) Revoke(ctx context.Context, node string) (RevokeResult, error) {
	if err := a.reg.Revoke(node); err != nil {
		return RevokeResult{}, err
	}
	var res RevokeResult
	reason := "node revoked"
	for _, mb := range a.m.c.MemberList.Members().Members() {
		pid := actor.NewPID(mb.Address(), authActorName)
		timeout := a.cfg.CutTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			res.Unreached = append(res.Unreached, mb.Id)
			continue
		}
		r, err := a.m.system.Root.RequestFuture(pid, &pb.ClusterCutNode{NodeId: node, Reason: reason}, timeout).Result()
		rep, ok := r.(*pb.ClusterCutNodeReply)
		if err != nil || !ok {
			a.log.Warn("member did not confirm cutting a revoked node", slog.String("member", mb.Id), slog.String("node", node), slog.Any("err", err))
			res.Unreached = append(res.Unreached, mb.Id)
			continue
		}
		res.StreamsCut += int(rep.GetStreams())
	}
	a.log.Warn("node revoked across the cluster", slog.String("node", node), slog.Int("streams_cut", res.StreamsCut),
		slog.Int("unreached", len(res.Unreached)))
	return res, nil
}

// Handler serves the enrollment endpoints of the cluster API, behind the bearer token:
//
//	POST /cluster/v1/enrollment/codes               {"site","ttl_seconds"} → {"code","expires_at","ca_fingerprint"}
//	GET  /cluster/v1/enrollment/pending             → {"nodes":[{"node_id","name","site","fingerprint"}]}
//	POST /cluster/v1/enrollment/nodes/{node}/confirm {"fingerprint"} → {"node_id","confirmed"}
//	POST /cluster/v1/enrollment/nodes/{node}/revoke  → {"node_id","revoked","streams_cut","unreached"}
//	GET  /cluster/v1/enrollment/ca                  → {"ca_pem","fingerprint"}
func (a *Auth) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cluster/v1/enrollment/codes", a.handleMint)
	mux.HandleFunc("GET /cluster/v1/enrollment/pending", a.handlePending)
	mux.HandleFunc("POST /cluster/v1/enrollment/nodes/{node}/confirm", a.handleConfirm)
	mux.HandleFunc("POST /cluster/v1/enrollment/nodes/{node}/revoke", a.handleRevoke)
	mux.HandleFunc("GET /cluster/v1/enrollment/ca", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]string{"ca_pem": string(a.cfg.Secrets.CACertPEM)}
		if a.cfg.CA != nil {
			out["fingerprint"] = a.cfg.CA.Fingerprint()
		}
		writeJSON(w, http.StatusOK, out)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bearer token required"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// decodeBody reads an optional JSON body into v (api.DecodeJSON), answering 400 when it is unusable.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := api.DecodeJSON(w, r, maxBody, v, "object", true); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return false
	}
	return true
}

func (a *Auth) handleMint(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Site       string `json:"site"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	if b.TTLSeconds < 0 || b.TTLSeconds > int64(enroll.DefaultConfig().MaxCodeTTL/time.Second) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ttl_seconds out of range"})
		return
	}
	code, exp, err := a.reg.MintCode(b.Site, time.Duration(b.TTLSeconds)*time.Second)
	if err != nil {
		writeJSON(w, registryStatus(err), map[string]string{"error": err.Error()})
		return
	}
	out := map[string]any{"code": code, "expires_at": exp.UTC().Format(time.RFC3339)}
	if a.cfg.CA != nil {
		out["ca_fingerprint"] = a.cfg.CA.Fingerprint()
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *Auth) handlePending(w http.ResponseWriter, _ *http.Request) {
	p, err := a.reg.Pending()
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	nodes := make([]map[string]string, 0, len(p))
	for _, n := range p {
		nodes = append(nodes, map[string]string{"node_id": n.NodeID, "name": n.Name, "site": n.Site, "fingerprint": n.Fingerprint})
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}

func (a *Auth) handleConfirm(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Fingerprint string `json:"fingerprint"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	node := r.PathValue("node")
	if _, err := a.reg.Confirm(node, b.Fingerprint); err != nil {
		writeJSON(w, registryStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": node, "confirmed": true})
}

func (a *Auth) handleRevoke(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	res, err := a.Revoke(r.Context(), node)
	if err != nil {
		writeJSON(w, registryStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": node, "revoked": true, "streams_cut": res.StreamsCut,
		"unreached": res.Unreached})
}

func registryStatus(err error) int {
	switch {
	case errors.Is(err, registry.ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, registry.ErrFingerprintMismatch), errors.Is(err, registry.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, registry.ErrAlreadyConfirmed), errors.Is(err, registry.ErrRevoked):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}
