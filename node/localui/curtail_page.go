package localui

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The curtailment page's event panel: when the Site runs curtailment events (CurtailEvents), the page shows
// the current (or last) event's state and has plain-form controls to start one (a kW target to shed, or
// every miner, optionally ending after some minutes) and to stop the one running. The forms carry the
// session's CSRF token like every other form; their bodies are checked by curtailRequest, the same checks
// as POST /api/local/curtail-event.

// Limits of the event form.
const (
	// maxEventMinutes bounds "end after N minutes" (a week).
	maxEventMinutes = 7 * 24 * 60
)

// curtailEventPanel is the event part of the curtailment page.
type curtailEventPanel struct {
	Event CurtailEventView
	// Active: an event is scheduled, ramping or holding (it can be stopped).
	Active bool
	// Error says why the state could not be read ("" when it was).
	Error string
}

// activeEventStates are the states of an event that can be stopped.
var activeEventStates = map[string]bool{"scheduled": true, "ramping": true, "holding": true}

// addEventPanel gives the page the Site's event state (none when the Site runs no events) and says which
// event a form just changed.
func (s *Server) addEventPanel(r *http.Request, d *pageData) {
	d.CurtailEvent = s.eventPanel(r)
	if id := r.URL.Query().Get("event"); id != "" && d.CurtailEvent != nil {
		d.Flash = "Curtailment event " + truncate(id, MaxIDLength) + " updated."
	}
}

// eventPanel reads the Site's event state (nil: the Site runs no events).
func (s *Server) eventPanel(r *http.Request) *curtailEventPanel {
	ce, ok := s.site.(CurtailEvents)
	if !ok {
		return nil
	}
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	v, err := ce.CurtailState(ctx)
	if err != nil {
		_, msg := siteError("read curtailment", err)
		return &curtailEventPanel{Error: msg}
	}
	v = orEmptyStragglers(v)
	return &curtailEventPanel{Event: v, Active: activeEventStates[v.State]}
}

// eventForm turns the page's event form into the JSON body the API takes, then checks it like the API.
// op is "event-start" or "event-stop".
func eventForm(f url.Values, op string, now time.Time) (curtailEventJSON, CurtailEventRequest, error) {
	b := curtailEventJSON{Op: strings.TrimPrefix(op, "event-"), EventID: strings.TrimSpace(f.Get("event_id"))}
	if b.Op == "start" {
		if b.EventID == "" {
			b.EventID = "local-" + randomToken()[:12]
		}
		b.Full = f.Get("full") == "on"
		if v := strings.TrimSpace(f.Get("target_kw")); v != "" && !b.Full {
			kw, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return b, CurtailEventRequest{}, fmt.Errorf("%w: the kW to shed, %q, is not a number", ErrInvalidRequest, truncate(v, 20))
			}
			b.TargetKW = kw
		}
		if v := strings.TrimSpace(f.Get("end_after_min")); v != "" {
			m, err := strconv.Atoi(v)
			if err != nil || m <= 0 || m > maxEventMinutes {
				return b, CurtailEventRequest{}, fmt.Errorf("%w: end after 1 to %d minutes, not %q", ErrInvalidRequest, maxEventMinutes, truncate(v, 20))
			}
			end := now.Add(time.Duration(m) * time.Minute)
			b.EndAt = &end
		}
	}
	req, err := curtailRequest(b, now)
	return b, req, err
}

// postCurtailEvent handles the event forms of the curtailment page.
func (s *Server) postCurtailEvent(w http.ResponseWriter, r *http.Request, sess *session, op string) {
	ce, ok := s.site.(CurtailEvents)
	if !ok {
		s.renderError(w, r, http.StatusNotImplemented, "This node runs no curtailment events.")
		return
	}
	b, req, err := eventForm(r.PostForm, op, s.clock.Now())
	name := "curtail_event_" + b.Op
	if err != nil {
		s.m.command(name, "invalid")
		s.renderError(w, r, http.StatusBadRequest, "The curtailment event was not changed: "+err.Error())
		return
	}
	req.Actor = "local:" + sess.user
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	var v CurtailEventView
	if b.Op == "stop" {
		v, err = ce.StopCurtail(ctx, req.EventID, req.Actor)
	} else {
		v, err = ce.StartCurtail(ctx, req)
	}
	if err != nil {
		s.m.command(name, "error")
		s.log.Warn("curtailment event not changed", slog.String("op", b.Op), slog.String("event", req.EventID),
			slog.String("actor", req.Actor), slog.Any("error", err))
		status, msg := siteError("change the curtailment event", err)
		s.renderError(w, r, status, msg)
		return
	}
	s.m.command(name, "ok")
	s.log.Info("curtailment event changed", slog.String("op", b.Op), slog.String("event", v.EventID), slog.String("state", v.State),
		slog.String("actor", req.Actor), slog.String("client", r.RemoteAddr))
	http.Redirect(w, r, withQuery("/curtailment", "event", v.EventID), http.StatusSeeOther)
}
