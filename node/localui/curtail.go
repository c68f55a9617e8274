package localui

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"
)

// CurtailEvents is what a Site offers when its node runs curtailment events (node/curtail): a kW target to
// shed (or every miner), ramped least-efficient-first, verified and kept true while the WAN is down. A Site
// that implements it gets GET and POST /api/local/curtail-event; one that does not answers 501 there.
type CurtailEvents interface {
	// StartCurtail starts (or updates) an event. Errors wrapping ErrInvalidRequest are the operator's to fix.
	StartCurtail(ctx context.Context, req CurtailEventRequest) (CurtailEventView, error)
	// StopCurtail stops the event in progress (ErrInvalidRequest when it is not the one running).
	StopCurtail(ctx context.Context, eventID, actor string) (CurtailEventView, error)
	// CurtailState is the current (or last) event's state.
	CurtailState(ctx context.Context) (CurtailEventView, error)
}

// CurtailEventRequest starts an event: TargetKW to shed, or Full; MinerIDs limits the scope (empty: the
// site); EndAt ends it by itself (zero: until stopped).
type CurtailEventRequest struct {
	EventID  string
	TargetKW float64
	Full     bool
	MinerIDs []string
	EndAt    time.Time
	Actor    string
}

// CurtailEventView is an event's state as the local UI shows it.
type CurtailEventView struct {
	EventID string `json:"event_id"`
	// State: idle, scheduled, ramping, holding, releasing, done or failed.
	State      string  `json:"state"`
	Source     string  `json:"source,omitempty"`
	Full       bool    `json:"full"`
	TargetKW   float64 `json:"target_kw"`
	AchievedKW float64 `json:"achieved_kw"`
	// MeasuredKW is what the scope draws now; BaselineKW what it drew before the event.
	MeasuredKW      float64  `json:"measured_kw"`
	BaselineKW      float64  `json:"baseline_kw"`
	MinersCurtailed int      `json:"miners_curtailed"`
	MinersPending   int      `json:"miners_pending"`
	Stragglers      []string `json:"stragglers"`
}

// maxCurtailMiners bounds the miners one local event names.
const maxCurtailMiners = MaxMinersPerCommand

type curtailEventJSON struct {
	Op       string     `json:"op"` // start or stop
	EventID  string     `json:"event_id"`
	TargetKW float64    `json:"target_kw"`
	Full     bool       `json:"full"`
	MinerIDs []string   `json:"miner_ids"`
	EndAt    *time.Time `json:"end_at"`
}

// curtailRequest checks a start or stop body.
func curtailRequest(b curtailEventJSON, now time.Time) (CurtailEventRequest, error) {
	req := CurtailEventRequest{EventID: b.EventID, TargetKW: b.TargetKW, Full: b.Full, MinerIDs: b.MinerIDs}
	if b.EventID != "" {
		if err := checkToken(b.EventID); err != nil {
			return req, fmt.Errorf("%w: event id: %w", ErrInvalidRequest, err)
		}
	}
	switch b.Op {
	case "stop":
		if b.EventID == "" {
			return req, fmt.Errorf("%w: a stop names the event_id", ErrInvalidRequest)
		}
		return req, nil
	case "start":
	default:
		return req, fmt.Errorf("%w: op must be \"start\" or \"stop\"", ErrInvalidRequest)
	}
	switch {
	case math.IsNaN(b.TargetKW) || math.IsInf(b.TargetKW, 0) || b.TargetKW < 0:
		return req, fmt.Errorf("%w: target_kw must be a number ≥ 0", ErrInvalidRequest)
	case b.Full == (b.TargetKW > 0):
		return req, fmt.Errorf("%w: give target_kw (the power to shed) or full, one of them", ErrInvalidRequest)
	case len(b.MinerIDs) > maxCurtailMiners:
		return req, fmt.Errorf("%w: too many miners", ErrInvalidRequest)
	}
	for _, id := range b.MinerIDs {
		if err := checkToken(id); err != nil {
			return req, fmt.Errorf("%w: miner id: %w", ErrInvalidRequest, err)
		}
	}
	if b.EndAt != nil {
		if !b.EndAt.After(now) {
			return req, fmt.Errorf("%w: end_at must be in the future", ErrInvalidRequest)
		}
		req.EndAt = *b.EndAt
	}
	return req, nil
}

func (s *Server) curtailEvents(w http.ResponseWriter) (CurtailEvents, bool) {
	ce, ok := s.site.(CurtailEvents)
	if !ok {
		writeJSONError(w, http.StatusNotImplemented, "this node runs no curtailment events")
	}
	return ce, ok
}

func (s *Server) apiCurtailState(w http.ResponseWriter, r *http.Request, _ *session) {
	ce, ok := s.curtailEvents(w)
	if !ok {
		return
	}
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	v, err := ce.CurtailState(ctx)
	if err != nil {
		status, msg := siteError("read curtailment", err)
		writeJSONError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, orEmptyStragglers(v))
}

func (s *Server) apiCurtailEvent(w http.ResponseWriter, r *http.Request, sess *session) {
	ce, ok := s.curtailEvents(w)
	if !ok {
		return
	}
	var body curtailEventJSON
	if err := decodeJSON(r, &body); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := curtailRequest(body, time.Now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Actor = "local:" + sess.user
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	var v CurtailEventView
	if body.Op == "stop" {
		v, err = ce.StopCurtail(ctx, req.EventID, req.Actor)
	} else {
		v, err = ce.StartCurtail(ctx, req)
	}
	name := "curtail_event_" + body.Op
	if err != nil {
		s.m.command(name, "error")
		status, msg := siteError("change curtailment", err)
		writeJSONError(w, status, msg)
		return
	}
	s.m.command(name, "ok")
	writeJSON(w, http.StatusAccepted, orEmptyStragglers(v))
}

func orEmptyStragglers(v CurtailEventView) CurtailEventView {
	if v.Stragglers == nil {
		v.Stragglers = []string{}
	}
	return v
}
