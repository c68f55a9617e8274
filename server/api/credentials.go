package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/registry"
)

// Credentials is what the node-revocation and credential-state endpoints need (the server's credential
// workflows over the registry, the gateway and the vault).
type Credentials interface {
	// RevokeNode cuts the node off at once (its open streams end, its session tokens and api_key are refused
	// from now on) and makes every credential it could read revocation-pending. Errors wrap
	// registry.ErrUnknownNode for a node that was never enrolled.
	RevokeNode(ctx context.Context, nodeID string) (NodeRevocation, error)
	// PendingCredentials lists every device whose credentials need work (revocation-pending or transferring).
	PendingCredentials() ([]credentials.Status, error)
	// DeviceCredentials returns one device's credential state (credentials.ErrUnknownDevice if none).
	DeviceCredentials(deviceID string) (credentials.Status, error)
}

// NodeRevocation is what revoking a node did.
type NodeRevocation struct {
	NodeID string `json:"node_id"`
	// StreamsCut counts the node's open gateway streams ended by the revocation.
	StreamsCut int `json:"streams_cut"`
	// Devices are the devices whose credentials the node could read: each has revocation-pending credentials
	// until a trusted owner rotates them.
	Devices []string `json:"devices"`
	// CancelledTransfers are transfers that could no longer complete.
	CancelledTransfers []string `json:"cancelled_transfers"`
}

func (a *API) registerCredentials() {
	a.handle("POST", "/api/v1/nodes/{id}/revoke", a.revokeNode)
	a.handle("GET", "/api/v1/credentials", a.listCredentials)
	a.handle("GET", "/api/v1/devices/{id}/credentials", a.deviceCredentials)
}

func (a *API) revokeNode(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Credentials == nil {
		a.unavailable(w, "node revocation (combined mode)")
		return
	}
	rev, err := a.cfg.Credentials.RevokeNode(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, registry.ErrUnknownNode):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil:
		a.log.Error("api: revoke node", slog.String("node", r.PathValue("id")), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	rev.Devices, rev.CancelledTransfers = orEmpty(rev.Devices), orEmpty(rev.CancelledTransfers)
	writeJSON(w, http.StatusOK, rev)
}

// credentialStates are the states GET /api/v1/credentials filters by ("" lists every device needing work).
var credentialStates = map[string]bool{"": true, string(credentials.StateRevocationPending): true,
	string(credentials.StateTransferPending): true}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Credentials == nil {
		a.unavailable(w, "the credential vault")
		return
	}
	state := r.URL.Query().Get("state")
	if !credentialStates[state] {
		writeError(w, http.StatusBadRequest, "bad_request", "state must be revocation-pending or transfer-pending")
		return
	}
	all, err := a.cfg.Credentials.PendingCredentials()
	if err != nil {
		a.log.Error("api: list credentials", slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "credential vault: "+err.Error())
		return
	}
	out := struct {
		Devices []credentials.Status `json:"devices"`
	}{Devices: []credentials.Status{}}
	for _, s := range all {
		if state == "" || pendingIn(s, credentials.State(state)) {
			out.Devices = append(out.Devices, s)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// pendingIn reports whether the device, or one of its credentials, is in state.
func pendingIn(s credentials.Status, state credentials.State) bool {
	if s.State == state {
		return true
	}
	for _, c := range s.Credentials {
		if c.State == state {
			return true
		}
	}
	return false
}

func (a *API) deviceCredentials(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Credentials == nil {
		a.unavailable(w, "the credential vault")
		return
	}
	s, err := a.cfg.Credentials.DeviceCredentials(r.PathValue("id"))
	switch {
	case errors.Is(err, credentials.ErrUnknownDevice):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "credential vault: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s)
}
