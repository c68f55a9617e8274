package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/store"
)

// Conflicts serves local-degraded mode's conflicts: cloud commands a node held because a local action on the
// same miner and field happened after the cloud issued them (*grains.Fleet implements it).
type Conflicts interface {
	Conflicts(status string) ([]*pb.Conflict, error)
	ResolveConflict(ctx context.Context, id, resolution, actor string) (*pb.Conflict, error)
	// OrgAudit is every node's audit merged in time order; origin "local", "cloud" or "" (all).
	OrgAudit(ctx context.Context, origin string, limit int) ([]*pb.AuditRecord, error)
}

func (a *API) registerConflicts() {
	a.handle("GET", "/api/v1/conflicts", a.listConflicts)
	a.handle("POST", "/api/v1/conflicts/{id}/resolve", a.resolveConflict)
	a.handle("GET", "/api/v1/audit", a.orgAudit)
}

// orgAudit is the org's audit: every node's gate decisions and the local commands nodes backfilled, in time
// order, optionally only one origin.
func (a *API) orgAudit(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Conflicts == nil {
		a.unavailable(w, "org audit")
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 10_000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	origin := r.URL.Query().Get("origin")
	switch origin {
	case "local", "cloud":
	case "", "all":
		origin = ""
	default:
		writeError(w, http.StatusBadRequest, "bad_request", "origin must be local, cloud or all")
		return
	}
	recs, err := a.cfg.Conflicts.OrgAudit(r.Context(), origin, limit)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := struct {
		Records []orgAuditJSON `json:"records"`
	}{Records: make([]orgAuditJSON, 0, len(recs))}
	for _, rec := range recs {
		out.Records = append(out.Records, orgAuditJSON{Node: rec.GetNodeId(), auditJSON: toAudit(rec)})
	}
	writeJSON(w, http.StatusOK, out)
}

type orgAuditJSON struct {
	Node string `json:"node_id"`
	auditJSON
}

type conflictJSON struct {
	ID           string     `json:"id"`
	Node         string     `json:"node_id"`
	MinerID      string     `json:"miner_id"`
	Field        string     `json:"field"`
	CommandID    string     `json:"command_id"`
	CommandActor string     `json:"command_actor"`
	Action       string     `json:"action"`
	PowerTargetW float64    `json:"power_target_w,omitempty"`
	Reason       string     `json:"reason"`
	Message      string     `json:"message"`
	CreatedAt    *time.Time `json:"created_at"`
	Status       string     `json:"status"`
	ResolvedBy   string     `json:"resolved_by,omitempty"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	Reissued     string     `json:"reissued_command_id,omitempty"`
}

func toConflict(c *pb.Conflict) conflictJSON {
	return conflictJSON{ID: c.GetConflictId(), Node: c.GetNodeId(), MinerID: c.GetMinerId(), Field: c.GetField(),
		CommandID: c.GetCommandId(), CommandActor: c.GetCommandActor(), Action: grains.ActionName(c.GetSpec().GetAction()),
		PowerTargetW: c.GetSpec().GetPowerTargetW(), Reason: "local action while offline", Message: c.GetMessage(),
		CreatedAt: tsMs(c.GetCreatedAtUnixMs()), Status: c.GetStatus(), ResolvedBy: c.GetResolvedBy(),
		ResolvedAt: tsMs(c.GetResolvedAtUnixMs()), Reissued: c.GetReissuedCommandId()}
}

func (a *API) listConflicts(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Conflicts == nil {
		a.unavailable(w, "conflicts")
		return
	}
	status := r.URL.Query().Get("status")
	switch status {
	case "", store.ConflictOpen, store.ConflictApplied, store.ConflictDiscarded:
	case "all":
		status = ""
	default:
		writeError(w, http.StatusBadRequest, "bad_request", "status must be open, applied, discarded or all")
		return
	}
	if !r.URL.Query().Has("status") {
		status = store.ConflictOpen
	}
	cs, err := a.cfg.Conflicts.Conflicts(status)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := struct {
		Conflicts []conflictJSON `json:"conflicts"`
	}{Conflicts: make([]conflictJSON, 0, len(cs))}
	for _, c := range cs {
		out.Conflicts = append(out.Conflicts, toConflict(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) resolveConflict(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Conflicts == nil {
		a.unavailable(w, "conflicts")
		return
	}
	var in struct {
		Resolution string `json:"resolution"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	c, err := a.cfg.Conflicts.ResolveConflict(r.Context(), r.PathValue("id"), in.Resolution, actorName(r))
	switch {
	case errors.Is(err, grains.ErrInvalidResolution), errors.Is(err, grains.ErrInvalidCommand):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, grains.ErrUnknownConflict):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrConflictResolved):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case err != nil:
		a.backendError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, toConflict(c))
	}
}

func toAudit(rec *pb.AuditRecord) auditJSON {
	return auditJSON{At: tsMs(rec.GetAtUnixMs()), CommandID: rec.GetCommandId(), Actor: rec.GetActor(),
		Seq: rec.GetMonotonicSeq(), KeyID: rec.GetKeyId(), Code: grains.ResultCodeName(rec.GetCode()), Message: rec.GetMessage(),
		MinerIDs: orEmpty(rec.GetMinerIds()), LeaseEpoch: rec.GetLeaseEpoch(), Signature: base64.StdEncoding.EncodeToString(rec.GetSignature()),
		LocalOrigin: rec.GetLocalOrigin()}
}
