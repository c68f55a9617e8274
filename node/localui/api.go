package localui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// JSON API under /api/local/: the same operations as the pages, for scripts on the site LAN. Authentication
// is the same session cookie (POST /api/local/login sets it); every POST needs Content-Type:
// application/json and the session's CSRF token in the X-CSRF-Token header.
//
//	POST /api/local/login        {"user","password"} → {"user","csrf_token","expires_at"} + session cookie
//	GET  /api/local/session      → {"user","csrf_token","expires_at"}
//	POST /api/local/logout       → 204
//	GET  /api/local/miners       ?state=&q=&offset=&limit= → {"total","filtered","miners":[MinerView]}
//	GET  /api/local/miners/{id}  → MinerView
//	GET  /api/local/link         → LinkView + {"state","banner"}
//	GET  /api/local/commands     ?limit= → {"commands":[CommandView]}
//	POST /api/local/commands     {"miner_ids"|"all","action","power_target_w","idempotency_key"} → 202 {"command_id","idempotency_key"}
//	POST /api/local/curtailment  {"op":"start"|"stop","idempotency_key"} → 202 {"command_id","idempotency_key"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decodeJSON reads one JSON object into v, refusing unknown fields and trailing data.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v: %w", err, ErrInvalidRequest)
	}
	if dec.More() {
		return fmt.Errorf("request body: data after the JSON object: %w", ErrInvalidRequest)
	}
	return nil
}

type sessionJSON struct {
	User      string    `json:"user"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) {
	// No session yet, so no synchronizer token: a JSON body is the CSRF defence here, since a cross-site
	// page cannot send one without a CORS preflight, which this server never grants.
	if !isJSON(r) {
		writeJSONError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
		return
	}
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.m.login("bad_request")
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	id, sess, err := s.authenticate(r.Context(), body.User, body.Password, r.RemoteAddr)
	if err != nil {
		status, msg, retry := loginMessage(err)
		setRetryAfter(w, retry)
		writeJSONError(w, status, msg)
		return
	}
	s.setSessionCookie(w, id)
	writeJSON(w, http.StatusOK, sessionJSON{User: sess.user, CSRFToken: sess.csrf, ExpiresAt: sess.expires.UTC()})
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request, sess *session) {
	writeJSON(w, http.StatusOK, sessionJSON{User: sess.user, CSRFToken: sess.csrf, ExpiresAt: sess.expires.UTC()})
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request, sess *session) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.delete(c.Value)
	}
	clearCookie(w, SessionCookie)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiMiners(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	state := q.Get("state")
	if _, err := parseStateName(state); state != "" && err != nil {
		writeJSONError(w, http.StatusBadRequest, "state must be one of "+strings.Join(StateNames, ", "))
		return
	}
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	all, err := s.site.Miners(ctx)
	if err != nil {
		status, msg := siteError("list its miners", err)
		writeJSONError(w, status, msg)
		return
	}
	filtered := filterMiners(all, state, strings.TrimSpace(q.Get("q")))
	off := min(atoiDefault(q.Get("offset"), 0), len(filtered))
	limit := atoiDefault(q.Get("limit"), len(filtered))
	page := filtered[off:min(off+limit, len(filtered))]
	writeJSON(w, http.StatusOK, map[string]any{"total": len(all), "filtered": len(filtered), "miners": page})
}

func (s *Server) apiMiner(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	m, err := s.site.Miner(ctx, r.PathValue("id"))
	if err != nil {
		status, msg := siteError("read the miner", err)
		writeJSONError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) apiLink(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	l := s.site.Link(ctx)
	writeJSON(w, http.StatusOK, struct {
		LinkView
		State  string `json:"state"`
		Banner string `json:"banner"`
	}{l, linkState(l), LinkBanner(l, s.clock.Now())})
}

func (s *Server) apiCommands(w http.ResponseWriter, r *http.Request, sess *session) {
	limit := min(max(atoiDefault(r.URL.Query().Get("limit"), s.cfg.CommandLogLimit), 1), 10000)
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	cmds, err := s.site.Commands(ctx, limit)
	if err != nil {
		status, msg := siteError("read the local command log", err)
		writeJSONError(w, status, msg)
		return
	}
	if cmds == nil {
		cmds = []CommandView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": cmds})
}

type submitJSON struct {
	CommandID      string `json:"command_id"`
	IdempotencyKey string `json:"idempotency_key"`
}

func (s *Server) apiSubmit(w http.ResponseWriter, r *http.Request, sess *session) {
	var body struct {
		MinerIDs       []string `json:"miner_ids"`
		All            bool     `json:"all"`
		Action         string   `json:"action"`
		PowerTargetW   float64  `json:"power_target_w"`
		IdempotencyKey string   `json:"idempotency_key"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	action, err := ParseAction(body.Action)
	if err != nil {
		s.m.command("unknown", "invalid")
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.IdempotencyKey == "" {
		body.IdempotencyKey = randomToken() // a caller that does not retry needs none
	}
	req := LocalCommandRequest{MinerIDs: body.MinerIDs, All: body.All, Action: action, PowerTargetW: body.PowerTargetW,
		IdempotencyKey: body.IdempotencyKey, Actor: "local:" + sess.user, ClientAddr: r.RemoteAddr}
	if err := req.Validate(); err != nil {
		s.m.command(body.Action, "invalid")
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	id, err := s.submit(r, req)
	if err != nil {
		status, msg := siteError("take the command", err)
		writeJSONError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusAccepted, submitJSON{CommandID: id, IdempotencyKey: req.IdempotencyKey})
}

func (s *Server) apiCurtailment(w http.ResponseWriter, r *http.Request, sess *session) {
	var body struct {
		Op             string `json:"op"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Op != "start" && body.Op != "stop" {
		writeJSONError(w, http.StatusBadRequest, `op must be "start" or "stop"`)
		return
	}
	if body.IdempotencyKey == "" {
		body.IdempotencyKey = randomToken()
	}
	req := CurtailmentRequest{Start: body.Op == "start", IdempotencyKey: body.IdempotencyKey,
		Actor: "local:" + sess.user, ClientAddr: r.RemoteAddr}
	id, err := s.curtail(r, req)
	if err != nil {
		status, msg := siteError("change site curtailment", err)
		if errors.Is(err, ErrInvalidRequest) {
			status = http.StatusBadRequest
		}
		writeJSONError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusAccepted, submitJSON{CommandID: id, IdempotencyKey: req.IdempotencyKey})
}
