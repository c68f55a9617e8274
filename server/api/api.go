package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// Backend is what the API needs from the actors. *grains.Fleet implements it.
type Backend interface {
	ListMiners(ctx context.Context, q grains.MinerQuery) (grains.MinerPage, error)
	Miner(ctx context.Context, id string) (grains.MinerRow, error)
	IssueCommand(ctx context.Context, req grains.CommandRequest) (grains.IssuedCommand, error)
	Command(ctx context.Context, id string) (*pb.CommandRecord, error)
	Nodes(ctx context.Context) (grains.NodesPage, error)
}

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// Route is one endpoint the API serves.
type Route struct {
	Method string
	Path   string // a Go 1.22 ServeMux path, also the OpenAPI path
}

// Pattern is the ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// API serves /api/v1.
type API struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	token   [32]byte
	mux     *http.ServeMux
	routes  []Route
}

// New returns the API over backend.
func New(cfg Config, backend Backend) (*API, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if backend == nil {
		return nil, errors.New("api: backend is required")
	}
	a := &API{cfg: cfg, backend: backend, log: cfg.Logger, token: sha256.Sum256([]byte(cfg.AdminToken)), mux: http.NewServeMux()}
	a.handle("GET", "/api/v1/miners", a.listMiners)
	a.handle("GET", "/api/v1/miners/{id}", a.getMiner)
	a.handle("POST", "/api/v1/commands", a.postCommand)
	a.handle("GET", "/api/v1/commands/{id}", a.getCommand)
	a.handle("GET", "/api/v1/nodes", a.listNodes)
	a.handle("GET", "/api/v1/openapi.json", a.openAPI)
	a.registerSplit()
	a.registerCommissioning()
	a.registerAuth()
	a.registerHistory()
	a.registerConflicts()
	a.registerPairs()
	a.registerSites()
	a.registerArtifacts()
	a.registerRollouts()
	a.registerCredentials()
	a.registerTransfers()
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path))
	})
	return a, nil
}

// Routes lists every endpoint served, in registration order.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// Handler serves the API: every request needs the admin bearer token.
func (a *API) Handler() http.Handler { return a }

// Mux is the routing table without authentication (tests match routes against the OpenAPI document).
func (a *API) Mux() *http.ServeMux { return a.mux }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.serveAuthenticated(w, r) }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(c int) {
	s.code = c
	s.ResponseWriter.WriteHeader(c)
}

func (a *API) handle(method, path string, h http.HandlerFunc) {
	rt := Route{Method: method, Path: path}
	a.routes = append(a.routes, rt)
	pattern := rt.Pattern()
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		a.cfg.Metrics.observe(pattern, sw.code, time.Since(start))
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, errorBody{Error: errorDetail{Code: kind, Message: msg}})
}

// backendError maps an actor error to a response.
func (a *API) backendError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, grains.ErrInvalidCommand), errors.Is(err, grains.ErrInvalidQuery),
		errors.Is(err, grains.ErrUnknownMiner) && r.Method == http.MethodPost:
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, grains.ErrUnknownMiner), errors.Is(err, grains.ErrUnknownCommand):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrIdempotencyConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, grains.ErrNotRunning), errors.Is(err, actors.ErrTimeout), errors.Is(err, actors.ErrDeadActor),
		errors.Is(err, grains.ErrStore):
		a.log.Warn("api: backend unavailable", slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "server busy or starting, retry: "+err.Error())
	default:
		a.log.Error("api: backend error", slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (a *API) listMiners(w http.ResponseWriter, r *http.Request) {
	q, err := parseMinerQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f, err := parseMinerFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	offset, limit := q.Offset, q.Limit
	if f.active() {
		q.Offset, q.Limit = 0, grains.MaxPageLimit
	}
	page, err := a.backend.ListMiners(r.Context(), q)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	var facets *facetsJSON
	if f.active() {
		page, facets = f.apply(page, offset, limit)
	}
	out := minerListJSON{Total: page.Total, Offset: page.Offset, Limit: page.Limit, AsOf: page.AsOf.UTC(),
		Counts: page.Counts, Items: make([]minerJSON, 0, len(page.Items)), Facets: facets}
	for _, row := range page.Items {
		out.Items = append(out.Items, toMiner(row, page.AsOf))
	}
	writeJSON(w, http.StatusOK, out)
}

// parseMinerQuery reads state (comma-separated state names, or "stale"), q, limit and offset.
func parseMinerQuery(r *http.Request) (grains.MinerQuery, error) {
	v := r.URL.Query()
	q := grains.MinerQuery{Search: v.Get("q")}
	if len(q.Search) > 256 {
		return q, fmt.Errorf("%w: q longer than 256 bytes", ErrBadRequest)
	}
	for _, part := range strings.Split(v.Get("state"), ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		if part == "" {
			continue
		}
		if part == "stale" {
			q.Stale = true
			continue
		}
		s, ok := grains.ParseState(part)
		if !ok {
			return q, fmt.Errorf("%w: unknown state %q (want stale or one of %s)", ErrBadRequest, part, strings.Join(grains.StateNames(), ", "))
		}
		q.States = append(q.States, s)
	}
	var err error
	if q.Limit, err = intParam(v.Get("limit"), "limit", grains.MaxPageLimit); err != nil {
		return q, err
	}
	if q.Offset, err = intParam(v.Get("offset"), "offset", 1<<31-1); err != nil {
		return q, err
	}
	return q, nil
}

func intParam(s, name string, maxV int) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxV {
		return 0, fmt.Errorf("%w: %s must be an integer in [0, %d], got %q", ErrBadRequest, name, maxV, s)
	}
	return n, nil
}

func (a *API) getMiner(w http.ResponseWriter, r *http.Request) {
	row, err := a.backend.Miner(r.Context(), r.PathValue("id"))
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toMinerDetail(row, a.cfg.Clock.Now()))
}

func (a *API) postCommand(w http.ResponseWriter, r *http.Request) {
	req, err := a.decodeCommand(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	res, err := a.backend.IssueCommand(r.Context(), req)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/commands/"+res.CommandID)
	writeJSON(w, http.StatusAccepted, commandAcceptedJSON{CommandID: res.CommandID, Existing: res.Existing})
}

// decodeCommand reads and checks a command body: bounded size, one JSON object, no unknown fields, a known
// action and a non-empty miner list.
func (a *API) decodeCommand(w http.ResponseWriter, r *http.Request) (grains.CommandRequest, error) {
	var req grains.CommandRequest
	var in commandRequestJSON
	if err := DecodeJSON(w, r, a.cfg.MaxBodyBytes, &in, "command object", false); err != nil {
		return req, err
	}
	action, ok := grains.ParseAction(in.Action)
	if !ok {
		return req, fmt.Errorf("%w: unknown action %q (want one of %s)", ErrBadRequest, in.Action, strings.Join(grains.ActionNames(), ", "))
	}
	// The org validates the rest (empty or duplicate ids, power target, unknown miners) before storing.
	var pools []*pb.Pool
	for _, p := range in.Pools {
		pools = append(pools, &pb.Pool{Url: p.URL, User: p.User, Password: p.Password, Priority: p.Priority})
	}
	fw, err := a.firmwareRef(in.Firmware)
	if err != nil {
		return req, err
	}
	return grains.CommandRequest{MinerIDs: in.MinerIDs, Action: action, PowerTargetW: in.PowerTargetW, Pools: pools,
		IdempotencyKey: in.IdempotencyKey, Actor: actorName(r), Firmware: fw, NewPassword: []byte(in.Password),
		CoolingMode: in.CoolingMode, FanPWM: in.FanPWM}, nil
}

func (a *API) getCommand(w http.ResponseWriter, r *http.Request) {
	q, viewed, err := parseCommandQuery(r) // commands_query.go
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if viewed {
		v, err := a.commandView(r.Context(), r.PathValue("id"), q)
		if err != nil {
			a.backendError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, toCommandView(v))
		return
	}
	rec, err := a.backend.Command(r.Context(), r.PathValue("id"))
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, CommandToJSON(rec))
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request) {
	page, err := a.backend.Nodes(r.Context())
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := nodeListJSON{AsOf: page.AsOf.UTC(), Nodes: make([]nodeJSON, 0, len(page.Nodes))}
	for _, n := range page.Nodes {
		out.Nodes = append(out.Nodes, toNode(n, page.AsOf))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}
