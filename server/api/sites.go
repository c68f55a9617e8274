package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// Sites is what the site policy and curtailment endpoints need (*grains.Fleet).
type Sites interface {
	PutSitePolicy(ctx context.Context, r grains.SitePolicyRequest) (grains.SitePolicyView, error)
	SitePolicy(ctx context.Context, site string) (grains.SitePolicyView, error)
	SiteCurtail(ctx context.Context, r grains.SiteCurtailRequest) (grains.SiteCurtailStarted, error)
	SiteCurtailStatus(ctx context.Context, site string) ([]grains.NodeCurtail, error)
}

func (a *API) registerSites() {
	a.handle("PUT", "/api/v1/sites/{site}/policy", a.putSitePolicy)
	a.handle("GET", "/api/v1/sites/{site}/policy", a.getSitePolicy)
	a.handle("POST", "/api/v1/sites/{site}/curtail", a.postSiteCurtail)
	a.handle("GET", "/api/v1/sites/{site}/curtail", a.getSiteCurtail)
}

type siteNodeOutcomeJSON struct {
	Node      string     `json:"node"`
	CommandID string     `json:"command_id"`
	Code      string     `json:"code"`
	Message   string     `json:"message"`
	At        *time.Time `json:"at"`
}

type sitePolicyJSON struct {
	Site    string                `json:"site"`
	Version uint64                `json:"version"`
	KeyID   string                `json:"key_id"`
	Policy  json.RawMessage       `json:"policy"`
	Nodes   []siteNodeOutcomeJSON `json:"nodes"`
}

type siteCurtailRequestJSON struct {
	EventID  string     `json:"event_id"`
	Stop     bool       `json:"stop"`
	TargetKW float64    `json:"target_kw"`
	Full     bool       `json:"full"`
	MinerIDs []string   `json:"miner_ids"`
	EndAt    *time.Time `json:"end_at"`
}

type curtailStatusJSON struct {
	EventID    string   `json:"event_id"`
	State      string   `json:"state"`
	TargetKW   float64  `json:"target_kw"`
	AchievedKW float64  `json:"achieved_kw"`
	Full       bool     `json:"full"`
	Source     string   `json:"source"`
	Curtailed  int      `json:"miners_curtailed"`
	Stragglers []string `json:"stragglers"`
}

type nodeCurtailJSON struct {
	Node    string               `json:"node"`
	Status  *curtailStatusJSON   `json:"status"`
	Command *siteNodeOutcomeJSON `json:"command"`
}

func toOutcome(o grains.SiteNodeOutcome) siteNodeOutcomeJSON {
	out := siteNodeOutcomeJSON{Node: o.Node, CommandID: o.CommandID, Code: o.Code, Message: o.Message}
	if !o.At.IsZero() {
		t := o.At.UTC()
		out.At = &t
	}
	return out
}

func toSitePolicy(v grains.SitePolicyView) sitePolicyJSON {
	out := sitePolicyJSON{Site: v.Site, Version: v.Version, KeyID: v.KeyID, Policy: v.Policy, Nodes: []siteNodeOutcomeJSON{}}
	for _, o := range v.Nodes {
		out.Nodes = append(out.Nodes, toOutcome(o))
	}
	return out
}

func toCurtailStatus(s *pb.CurtailStatus) *curtailStatusJSON {
	if s == nil {
		return nil
	}
	return &curtailStatusJSON{EventID: s.GetEventId(), State: s.GetState(), TargetKW: s.GetTargetKw(), AchievedKW: s.GetAchievedKw(),
		Full: s.GetFull(), Source: s.GetSource(), Curtailed: len(s.GetCurtailed()), Stragglers: orEmpty(s.GetStragglers())}
}

func (a *API) sitesError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, grains.ErrInvalidSite), errors.Is(err, grains.ErrUnknownMiner):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, grains.ErrUnknownSite):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrStalePolicy):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	default:
		a.backendError(w, r, err)
	}
}

// putSitePolicy takes the policy JSON (rules, schedules, trusted_pools; version optional) as the body.
func (a *API) putSitePolicy(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Sites == nil {
		a.unavailable(w, "site policies")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return
	}
	if !json.Valid(body) {
		writeError(w, http.StatusBadRequest, "bad_request", "body is not a JSON policy object")
		return
	}
	v, err := a.cfg.Sites.PutSitePolicy(r.Context(), grains.SitePolicyRequest{Site: r.PathValue("site"), JSON: body, Actor: actorName(r)})
	if err != nil {
		a.sitesError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSitePolicy(v))
}

func (a *API) getSitePolicy(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Sites == nil {
		a.unavailable(w, "site policies")
		return
	}
	v, err := a.cfg.Sites.SitePolicy(r.Context(), r.PathValue("site"))
	if err != nil {
		a.sitesError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSitePolicy(v))
}

func (a *API) postSiteCurtail(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Sites == nil {
		a.unavailable(w, "curtailment")
		return
	}
	var in siteCurtailRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	req := grains.SiteCurtailRequest{Site: r.PathValue("site"), EventID: in.EventID, Stop: in.Stop, TargetKW: in.TargetKW,
		Full: in.Full, MinerIDs: in.MinerIDs, Actor: actorName(r)}
	if in.EndAt != nil {
		req.EndAt = *in.EndAt
	}
	started, err := a.cfg.Sites.SiteCurtail(r.Context(), req)
	if err != nil {
		a.sitesError(w, r, err)
		return
	}
	out := struct {
		Site    string                `json:"site"`
		EventID string                `json:"event_id"`
		Nodes   []siteNodeOutcomeJSON `json:"nodes"`
	}{Site: started.Site, EventID: started.EventID, Nodes: []siteNodeOutcomeJSON{}}
	for _, o := range started.Nodes {
		out.Nodes = append(out.Nodes, toOutcome(o))
	}
	writeJSON(w, http.StatusAccepted, out)
}

func (a *API) getSiteCurtail(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Sites == nil {
		a.unavailable(w, "curtailment")
		return
	}
	ncs, err := a.cfg.Sites.SiteCurtailStatus(r.Context(), r.PathValue("site"))
	if err != nil {
		a.sitesError(w, r, err)
		return
	}
	out := struct {
		Site  string            `json:"site"`
		Nodes []nodeCurtailJSON `json:"nodes"`
	}{Site: r.PathValue("site"), Nodes: []nodeCurtailJSON{}}
	for _, nc := range ncs {
		j := nodeCurtailJSON{Node: nc.Node, Status: toCurtailStatus(nc.Status)}
		if nc.Command != nil {
			c := toOutcome(*nc.Command)
			j.Command = &c
		}
		out.Nodes = append(out.Nodes, j)
	}
	writeJSON(w, http.StatusOK, out)
}
