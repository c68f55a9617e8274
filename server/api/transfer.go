package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/registry"
)

// DeviceTransfers moves a device to another node (the server's credential workflows implement it next to
// Credentials). Errors: grains.ErrInvalidTransfer, grains.ErrInvalidNode, *grains.UnknownMinersError,
// registry.ErrUnknownNode (the target was never enrolled).
type DeviceTransfers interface {
	TransferDevice(ctx context.Context, minerID, to, actor string) (grains.TransferStarted, error)
}

type transferRequestJSON struct {
	To string `json:"to"`
}

func (a *API) registerTransfers() {
	a.handle("POST", "/api/v1/devices/{id}/transfer", a.transferDevice)
	a.handle("POST", "/api/v1/credentials/rotate", a.rotateCredentials)
}

func (a *API) transferDevice(w http.ResponseWriter, r *http.Request) {
	t, ok := a.cfg.Credentials.(DeviceTransfers)
	if !ok || a.cfg.Credentials == nil {
		a.unavailable(w, "device transfer (combined mode)")
		return
	}
	var in transferRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if in.To == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "to must name the node that takes the device over")
		return
	}
	res, err := t.TransferDevice(r.Context(), r.PathValue("id"), in.To, actorName(r))
	var unknown *grains.UnknownMinersError
	switch {
	case errors.As(err, &unknown), errors.Is(err, registry.ErrUnknownNode):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrInvalidTransfer), errors.Is(err, grains.ErrInvalidNode):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case err != nil:
		a.log.Error("api: transfer device", slog.String("miner", r.PathValue("id")), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusAccepted, res)
	}
}

// CredentialRotations starts the rotations the server can run by itself for revocation-pending
// credentials (implemented next to Credentials).
type CredentialRotations interface {
	RotatePending(ctx context.Context) ([]CredentialRotation, error)
}

// CredentialRotation is one rotation a sweep started, or why it could not.
type CredentialRotation struct {
	DeviceID  string `json:"device_id"`
	Purpose   string `json:"purpose"`
	CommandID string `json:"command_id,omitempty"`
	// Skipped says why nothing was issued (no trusted owner, needs the operator's new secret, ...).
	Skipped string `json:"skipped,omitempty"`
}

func (a *API) rotateCredentials(w http.ResponseWriter, r *http.Request) {
	rc, ok := a.cfg.Credentials.(CredentialRotations)
	if !ok || a.cfg.Credentials == nil {
		a.unavailable(w, "credential rotation (combined mode)")
		return
	}
	out, err := rc.RotatePending(r.Context())
	if err != nil {
		a.log.Error("api: rotate credentials", slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	if out == nil {
		out = []CredentialRotation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rotations": out})
}
