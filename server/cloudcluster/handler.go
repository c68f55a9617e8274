package cloudcluster

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/hashfleet/hashfleet/server/api"
)

// maxBody bounds a request body of the cluster endpoints.
const maxBody = 1 << 20

// Handler serves the member's cluster endpoints (operators and tests), behind a bearer token:
//
//	POST /cluster/v1/nodes/{node}/commands  {"command_id","actor","payload"(base64)} → ClusterIssueReply
//	GET  /cluster/v1/nodes/{node}                                                  → ClusterNodeStatusReply
//	GET  /cluster/v1/members                                                       → {"self","members"}
//	POST /cluster/v1/orgs/{org}/commands  {"idempotency_key","miner_ids","action",…} → orgIssueJSON
//	GET  /cluster/v1/commands/{id}                                                 → orgCommandJSON
//	GET  /cluster/v1/miners/{id}                                                   → minerJSON
//	GET  /cluster/v1/keys, POST /cluster/v1/keys/rotate, POST /cluster/v1/keys/{id}/revoke|announce (keys_http.go)
func (m *Member) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cluster/v1/nodes/{node}/commands", m.handleIssue)
	mux.HandleFunc("GET /cluster/v1/nodes/{node}", m.handleStatus)
	mux.HandleFunc("POST /cluster/v1/orgs/{org}/commands", m.handleOrgIssue) // commands_http.go
	mux.HandleFunc("GET /cluster/v1/commands/{id}", m.handleCommand)
	mux.HandleFunc("GET /cluster/v1/miners/{id}", m.handleMiner)
	mux.HandleFunc("GET /cluster/v1/keys", m.handleKeys) // keys_http.go
	mux.HandleFunc("POST /cluster/v1/keys/rotate", m.handleRotateKeys)
	mux.HandleFunc("POST /cluster/v1/keys/{id}/revoke", m.handleRevokeKey)
	mux.HandleFunc("POST /cluster/v1/keys/{id}/announce", m.handleAnnounceKey)
	mux.HandleFunc("GET /cluster/v1/members", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"self": m.ID(), "address": m.Address(), "members": m.Members()})
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

type issueBody struct {
	CommandID string `json:"command_id"`
	Actor     string `json:"actor"`
	Payload   []byte `json:"payload"`
}

func (m *Member) handleIssue(w http.ResponseWriter, r *http.Request) {
	var b issueBody
	if err := api.DecodeJSON(w, r, maxBody, &b, "object", false); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rep, err := m.Issue(r.Context(), Command{NodeID: r.PathValue("node"), CommandID: b.CommandID, Actor: b.Actor, Payload: b.Payload})
	if err != nil {
		writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": rep.GetSeq(), "sent": rep.GetSent(), "stream_member": rep.GetStreamMember(),
		"grain_member": rep.GetGrainMember()})
}

func (m *Member) handleStatus(w http.ResponseWriter, r *http.Request) {
	rep, err := m.NodeStatus(r.Context(), r.PathValue("node"))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": rep.GetNodeId(), "grain_member": rep.GetGrainMember(),
		"stream_member": rep.GetStreamMember(), "last_seq": rep.GetLastSeq(), "connected": rep.GetConnected()})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownMiners):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotStarted):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
