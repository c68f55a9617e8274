package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/server/rollout"
)

// Rollouts runs rolling firmware updates. *rollout.Manager implements it.
type Rollouts interface {
	Start(ctx context.Context, req rollout.Request) (string, error)
	Get(id string) (rollout.Status, error)
}

func (a *API) registerRollouts() {
	a.handle("POST", "/api/v1/rollouts", a.postRollout)
	a.handle("GET", "/api/v1/rollouts/{id}", a.getRollout)
}

type rolloutRequestJSON struct {
	Site       string   `json:"site"`
	MinerIDs   []string `json:"miner_ids"`
	Artifact   string   `json:"artifact"`
	BatchSize  int      `json:"batch_size"`
	HealthGate struct {
		MinHashrateRatio float64 `json:"min_hashrate_ratio"`
		Settle           string  `json:"settle"` // Go duration, "2m"
	} `json:"health_gate"`
}

func (a *API) postRollout(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Rollouts == nil || a.cfg.Artifacts == nil {
		a.unavailable(w, "rollouts")
		return
	}
	var in rolloutRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	settle, err := time.ParseDuration(in.HealthGate.Settle)
	if in.HealthGate.Settle == "" {
		settle, err = 0, nil
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("health_gate.settle: %v", err))
		return
	}
	fw, err := a.firmwareRef(&firmwareRequestJSON{SHA256: in.Artifact})
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "artifact: "+err.Error())
		return
	}
	id, err := a.cfg.Rollouts.Start(r.Context(), rollout.Request{Site: in.Site, MinerIDs: in.MinerIDs, Firmware: fw,
		BatchSize: in.BatchSize, MinHashrateRatio: in.HealthGate.MinHashrateRatio, Settle: settle, Actor: actorName(r)})
	switch {
	case errors.Is(err, rollout.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	st, _ := a.cfg.Rollouts.Get(id)
	w.Header().Set("Location", "/api/v1/rollouts/"+id)
	writeJSON(w, http.StatusAccepted, st)
}

func (a *API) getRollout(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Rollouts == nil {
		a.unavailable(w, "rollouts")
		return
	}
	st, err := a.cfg.Rollouts.Get(r.PathValue("id"))
	if errors.Is(err, rollout.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}
