package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/server/grains"
)

// Pairs is what the warm-standby pair endpoints need (*grains.Fleet).
type Pairs interface {
	DeclarePair(ctx context.Context, d grains.PairDeclaration) (grains.PairStatus, error)
	Pairs(ctx context.Context) ([]grains.PairStatus, error)
	Pair(ctx context.Context, id string) (grains.PairStatus, error)
	RequestTransfer(ctx context.Context, id, to, actor string) (grains.PairStatus, error)
	DeletePair(ctx context.Context, id string) error
}

func (a *API) registerPairs() {
	a.handle("POST", "/api/v1/pairs", a.postPair)
	a.handle("GET", "/api/v1/pairs", a.listPairs)
	a.handle("GET", "/api/v1/pairs/{id}", a.getPair)
	a.handle("POST", "/api/v1/pairs/{id}/transfer", a.postPairTransfer)
	a.handle("DELETE", "/api/v1/pairs/{id}", a.deletePair)
}

type pairRequestJSON struct {
	Site    string   `json:"site"`
	Members []string `json:"members"`
	Standby string   `json:"standby"`
	Devices []string `json:"devices"`
}

type pairTransferRequestJSON struct {
	To string `json:"to"`
}

type pairMemberJSON struct {
	Node    string `json:"node"`
	Standby bool   `json:"standby"`
	Holder  bool   `json:"holder"`
	// LastHeardAgeS is how long ago the cloud last heard the member (heartbeat or lease request); null:
	// not since the lease grain started.
	LastHeardAgeS *float64 `json:"last_heard_age_s"`
	GossipAddr    string   `json:"gossip_addr"`
}

type pairTransferJSON struct {
	To          string    `json:"to"`
	By          string    `json:"by"`
	RequestedAt time.Time `json:"requested_at"`
}

type pairChangeJSON struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Epoch uint64    `json:"epoch"`
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
}

type pairJSON struct {
	ID         string            `json:"id"`
	Site       string            `json:"site"`
	Members    []pairMemberJSON  `json:"members"`
	Standby    string            `json:"standby"`
	Devices    []string          `json:"devices"`
	Holder     string            `json:"holder"`
	Epoch      uint64            `json:"epoch"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	ExpiresInS *float64          `json:"expires_in_s"`
	Live       bool              `json:"live"`
	Transfer   *pairTransferJSON `json:"transfer_requested"`
	Failovers  int               `json:"failovers"`
	History    []pairChangeJSON  `json:"history"`
	DeclaredBy string            `json:"declared_by"`
	DeclaredAt time.Time         `json:"declared_at"`
	AsOf       time.Time         `json:"as_of"`
}

func toPair(p grains.PairStatus) pairJSON {
	out := pairJSON{ID: p.ID, Site: p.Site, Standby: p.Standby, Devices: orEmpty(p.Devices), Holder: p.Holder, Epoch: p.Epoch,
		ExpiresAt: ts(p.ExpiresAt), Live: p.Live, DeclaredBy: p.DeclaredBy, DeclaredAt: p.DeclaredAt.UTC(), AsOf: p.AsOf.UTC(),
		History: []pairChangeJSON{}}
	if !p.ExpiresAt.IsZero() && p.Holder != "" {
		in := p.ExpiresAt.Sub(p.AsOf).Seconds()
		out.ExpiresInS = &in
	}
	for _, n := range p.Members {
		m := pairMemberJSON{Node: n, Standby: n == p.Standby, Holder: n == p.Holder, GossipAddr: p.GossipAddrs[n]}
		if t, ok := p.Heard[n]; ok {
			m.LastHeardAgeS = age(t, p.AsOf)
		}
		out.Members = append(out.Members, m)
	}
	if t := p.Transfer; t != nil {
		out.Transfer = &pairTransferJSON{To: t.To, By: t.By, RequestedAt: t.RequestedAt.UTC()}
	}
	for _, h := range p.History {
		if h.Kind == "failover" {
			out.Failovers++
		}
		out.History = append(out.History, pairChangeJSON{From: h.From, To: h.To, Epoch: h.Epoch, At: h.At.UTC(), Kind: h.Kind})
	}
	return out
}

func (a *API) pairsError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, grains.ErrInvalidPair):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, grains.ErrUnknownNode), errors.Is(err, grains.ErrUnknownMiner), errors.Is(err, grains.ErrUnknownPair):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrPairConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, grains.ErrPairsUnsupported):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		a.backendError(w, r, err)
	}
}

func (a *API) postPair(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Pairs == nil {
		a.unavailable(w, "warm-standby pairs")
		return
	}
	var in pairRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if len(in.Members) != 2 {
		writeError(w, http.StatusBadRequest, "bad_request", "members must name exactly two nodes")
		return
	}
	p, err := a.cfg.Pairs.DeclarePair(r.Context(), grains.PairDeclaration{Site: in.Site, Members: [2]string{in.Members[0], in.Members[1]},
		Standby: in.Standby, Devices: slices.Clone(in.Devices), Actor: "user:admin"})
	if err != nil {
		a.pairsError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/pairs/"+p.ID)
	writeJSON(w, http.StatusCreated, toPair(p))
}

func (a *API) listPairs(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Pairs == nil {
		a.unavailable(w, "warm-standby pairs")
		return
	}
	ps, err := a.cfg.Pairs.Pairs(r.Context())
	if err != nil {
		a.pairsError(w, r, err)
		return
	}
	out := make([]pairJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, toPair(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (a *API) getPair(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Pairs == nil {
		a.unavailable(w, "warm-standby pairs")
		return
	}
	p, err := a.cfg.Pairs.Pair(r.Context(), r.PathValue("id"))
	if err != nil {
		a.pairsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPair(p))
}

func (a *API) postPairTransfer(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Pairs == nil {
		a.unavailable(w, "warm-standby pairs")
		return
	}
	var in pairTransferRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if in.To == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "to must name the member to hand the lease to")
		return
	}
	p, err := a.cfg.Pairs.RequestTransfer(r.Context(), r.PathValue("id"), in.To, "user:admin")
	if err != nil {
		a.pairsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toPair(p))
}

func (a *API) deletePair(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Pairs == nil {
		a.unavailable(w, "warm-standby pairs")
		return
	}
	if err := a.cfg.Pairs.DeletePair(r.Context(), r.PathValue("id")); err != nil {
		a.pairsError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
