package cloudcluster

import (
	"fmt"
	"net/http"
	"time"
)

// The key endpoints of /cluster/v1 (Member.Handler, admin token):
//
//	GET  /cluster/v1/keys                                             → KeyList
//	POST /cluster/v1/keys/rotate       {"overlap":"24h","expect_active"} → KeyChangeResult
//	POST /cluster/v1/keys/{id}/revoke                                  → KeyChangeResult
//	POST /cluster/v1/keys/{id}/announce                                → KeyChangeResult
//
// announce queues the announcement of rotation to {id} again (same command id: nodes that have it get
// nothing new), for nodes a rotation's answer listed with an error.
// {id} is a key id, with its org prefix URL-escaped (default%2Fk_…) or left out (k_…). Errors: 400
// malformed, 404 unknown key (or no stored announcement of it), 409 another rotation came first or the key is the active one, 503 no shared
// keys on this member; nothing is changed by a request that fails.

func (m *Member) handleKeys(w http.ResponseWriter, _ *http.Request) {
	l, err := m.Keys()
	if err != nil {
		writeJSON(w, keysStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, l)
}

type rotateBody struct {
	// Overlap is how long the retiring key stays trusted (Go duration, e.g. "24h"); at most MaxKeyOverlap.
	// Default DefaultKeyOverlap.
	Overlap string `json:"overlap"`
	// ExpectActive is the key the caller believes active (optional): the rotation is refused (409) if
	// another one replaced it first.
	ExpectActive string `json:"expect_active"`
}

func (m *Member) handleRotateKeys(w http.ResponseWriter, r *http.Request) {
	var b rotateBody
	if !decodeBody(w, r, &b) {
		return
	}
	if b.Overlap == "" {
		b.Overlap = DefaultKeyOverlap.String()
	}
	overlap, err := time.ParseDuration(b.Overlap)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("overlap %q is not a duration (e.g. \"24h\")", b.Overlap)})
		return
	}
	res, err := m.RotateKeys(r.Context(), overlap, b.ExpectActive)
	if err != nil {
		writeJSON(w, keysStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Member) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	var b struct{}
	if !decodeBody(w, r, &b) {
		return
	}
	res, err := m.RevokeKey(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSON(w, keysStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Member) handleAnnounceKey(w http.ResponseWriter, r *http.Request) {
	var b struct{}
	if !decodeBody(w, r, &b) {
		return
	}
	res, err := m.AnnounceKey(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSON(w, keysStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
