package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/history"
)

// History is what the series and totals endpoints read (*history.History implements it).
type History interface {
	Series(minerID string, from, to time.Time, step time.Duration) (*history.Series, error)
	GroupTotals(group string, from, to time.Time, step time.Duration) (*history.Totals, error)
	FleetTotals(from, to time.Time, step time.Duration) (*history.Totals, error)
}

// Series metrics and their units.
var metricUnits = map[string]string{
	"hashrate":   "TH/s",
	"power":      "W",
	"temp":       "°C",
	"fans":       "RPM",
	"efficiency": "J/TH",
}

// DefaultSeriesRange is the range of a series or totals query without from.
const DefaultSeriesRange = time.Hour

func (a *API) registerHistory() {
	a.handle("GET", "/api/v1/series", a.getSeries)
	a.handle("GET", "/api/v1/fleet/totals", a.getFleetTotals)
}

type seriesPointJSON struct {
	T   int64    `json:"t"`
	V   float64  `json:"v"`
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

type seriesJSON struct {
	Scope      string            `json:"scope"`
	ID         string            `json:"id"`
	Metric     string            `json:"metric"`
	Unit       string            `json:"unit"`
	Resolution string            `json:"resolution"`
	StepS      float64           `json:"step_s"`
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Points     []seriesPointJSON `json:"points"`
}

// rangeQuery is from, to and step of a history query.
type rangeQuery struct {
	from, to time.Time
	step     time.Duration
}

// parseTime reads unix milliseconds or RFC 3339.
func parseTime(s, name string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms <= 0 || ms > 1<<50 {
			return time.Time{}, fmt.Errorf("%w: %s %d out of range (unix milliseconds)", ErrBadRequest, name, ms)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s must be unix milliseconds or RFC 3339, got %q", ErrBadRequest, name, s)
	}
	return t, nil
}

// parseRange reads from, to (default now and an hour before) and step (a Go duration or seconds; 0 or
// absent picks one).
func (a *API) parseRange(r *http.Request) (rangeQuery, error) {
	v := r.URL.Query()
	q := rangeQuery{to: a.cfg.Clock.Now()}
	var err error
	if s := v.Get("to"); s != "" {
		if q.to, err = parseTime(s, "to"); err != nil {
			return q, err
		}
	}
	q.from = q.to.Add(-DefaultSeriesRange)
	if s := v.Get("from"); s != "" {
		if q.from, err = parseTime(s, "from"); err != nil {
			return q, err
		}
	}
	if !q.to.After(q.from) {
		return q, fmt.Errorf("%w: to must be after from", ErrBadRequest)
	}
	if s := v.Get("step"); s != "" {
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			q.step = time.Duration(n * float64(time.Second))
		} else if q.step, err = time.ParseDuration(s); err != nil {
			return q, fmt.Errorf("%w: step must be a duration (30s, 5m) or seconds, got %q", ErrBadRequest, s)
		}
		if q.step < 0 || q.step > 31*24*time.Hour {
			return q, fmt.Errorf("%w: step %s out of range [0, 744h]", ErrBadRequest, q.step)
		}
	}
	return q, nil
}

// historyError maps a history error to a response.
func (a *API) historyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, history.ErrInvalidID), errors.Is(err, history.ErrInvalidRange), errors.Is(err, history.ErrTooManyPoints):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, history.ErrUnknownGroup):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, history.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		a.log.Error("api: history", slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (a *API) getSeries(w http.ResponseWriter, r *http.Request) {
	if a.cfg.History == nil {
		a.unavailable(w, "history")
		return
	}
	v := r.URL.Query()
	scope, id, metric := v.Get("scope"), v.Get("id"), v.Get("metric")
	if scope == "" {
		scope = "miner"
	}
	unit, ok := metricUnits[metric]
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("metric %q: want hashrate, power, temp, fans or efficiency", metric))
		return
	}
	if id == "" && scope != "org" {
		writeError(w, http.StatusBadRequest, "bad_request", "id is required")
		return
	}
	q, err := a.parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	out := seriesJSON{Scope: scope, ID: id, Metric: metric, Unit: unit, Points: []seriesPointJSON{}}
	switch scope {
	case "miner":
		s, err := a.cfg.History.Series(id, q.from, q.to, q.step)
		if err != nil {
			a.historyError(w, r, err)
			return
		}
		out.Resolution, out.StepS, out.From, out.To = s.Resolution.String(), s.Step.Seconds(), s.From.UTC(), s.To.UTC()
		for _, p := range s.Points {
			if pt, ok := minerPoint(p, metric); ok {
				out.Points = append(out.Points, pt)
			}
		}
	case "node", "site", "org":
		if metric == "fans" {
			writeError(w, http.StatusBadRequest, "bad_request", "fans is a per-miner metric (scope=miner)")
			return
		}
		var t *history.Totals
		if scope == "org" { // one org per server: its totals are the fleet's
			t, err = a.cfg.History.FleetTotals(q.from, q.to, q.step)
		} else {
			t, err = a.cfg.History.GroupTotals(history.ScopeGroup(scope, id), q.from, q.to, q.step)
		}
		if err != nil {
			a.historyError(w, r, err)
			return
		}
		out.Resolution, out.StepS, out.From, out.To = t.Resolution.String(), t.Step.Seconds(), t.From.UTC(), t.To.UTC()
		for _, p := range t.Points {
			out.Points = append(out.Points, seriesPointJSON{T: p.AtUnixMs, V: totalValue(p, metric)})
		}
	default:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("scope %q: want miner, node, site or org", scope))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func minerPoint(p history.Point, metric string) (seriesPointJSON, bool) {
	pt := seriesPointJSON{T: p.AtUnixMs}
	switch metric {
	case "hashrate":
		lo, hi := p.HashrateMinTHs, p.HashrateMaxTHs
		pt.V, pt.Min, pt.Max = p.HashrateTHs, &lo, &hi
	case "power":
		pt.V = p.PowerW
	case "temp":
		if p.TempMaxC == 0 {
			return pt, false
		}
		pt.V = p.TempMaxC
	case "fans":
		if p.FanMinRPM < 0 {
			return pt, false
		}
		pt.V = float64(p.FanMinRPM)
	case "efficiency":
		pt.V = p.EfficiencyJTH
	}
	return pt, true
}

func totalValue(p history.TotalPoint, metric string) float64 {
	switch metric {
	case "hashrate":
		return p.HashrateTHs
	case "power":
		return p.PowerW
	case "temp":
		return p.TempMaxC
	}
	return p.EfficiencyJTH
}

type totalPointJSON struct {
	T             int64          `json:"t"`
	Miners        int            `json:"miners"`
	Stale         int            `json:"stale,omitempty"`
	HashrateTHs   float64        `json:"hashrate_ths"`
	PowerW        float64        `json:"power_w"`
	EfficiencyJTH float64        `json:"efficiency_jth"`
	TempMaxC      float64        `json:"temp_max_c"`
	States        map[string]int `json:"states"`
}

type fleetTotalsJSON struct {
	Scope      string           `json:"scope"`
	ID         string           `json:"id"`
	Resolution string           `json:"resolution"`
	StepS      float64          `json:"step_s"`
	From       time.Time        `json:"from"`
	To         time.Time        `json:"to"`
	Live       totalPointJSON   `json:"live"`
	Points     []totalPointJSON `json:"points"`
}

func toTotalPoint(p history.TotalPoint) totalPointJSON {
	out := totalPointJSON{T: p.AtUnixMs, Miners: p.Miners, Stale: p.Stale, HashrateTHs: p.HashrateTHs, PowerW: p.PowerW,
		EfficiencyJTH: p.EfficiencyJTH, TempMaxC: p.TempMaxC, States: map[string]int{}}
	for s, n := range p.States {
		if n > 0 {
			out.States[grains.StateName(s)] += n
		}
	}
	return out
}

// getFleetTotals answers the fleet's (or, with scope and id, a site's or node's) hashrate, power,
// efficiency and miners by state over time (history rollups), and live now (the read model).
func (a *API) getFleetTotals(w http.ResponseWriter, r *http.Request) {
	if a.cfg.History == nil {
		a.unavailable(w, "history")
		return
	}
	q, err := a.parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	v := r.URL.Query()
	scope, id := strings.ToLower(v.Get("scope")), v.Get("id")
	group := history.Fleet
	switch scope {
	case "", "org", "fleet":
		scope = "org"
	case "site", "node":
		if id == "" {
			writeError(w, http.StatusBadRequest, "bad_request", "id is required with scope "+scope)
			return
		}
		group = history.ScopeGroup(scope, id)
	default:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("scope %q: want org, site or node", scope))
		return
	}
	t, err := a.cfg.History.GroupTotals(group, q.from, q.to, q.step)
	if err != nil {
		a.historyError(w, r, err)
		return
	}
	live, err := a.liveTotals(r, scope, id)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := fleetTotalsJSON{Scope: scope, ID: id, Resolution: t.Resolution.String(), StepS: t.Step.Seconds(), From: t.From.UTC(),
		To: t.To.UTC(), Live: live, Points: make([]totalPointJSON, 0, len(t.Points))}
	for _, p := range t.Points {
		out.Points = append(out.Points, toTotalPoint(p))
	}
	writeJSON(w, http.StatusOK, out)
}

// liveTotals is now, from the fleet read model rather than the history: a miner whose node's stream is down
// (or whose sample is older than the server's StaleAfter) counts as stale, in no state and with no hashrate
// or power, never as healthy.
func (a *API) liveTotals(r *http.Request, scope, id string) (totalPointJSON, error) {
	page, err := a.backend.ListMiners(r.Context(), grains.MinerQuery{Limit: grains.MaxPageLimit})
	if err != nil {
		return totalPointJSON{}, err
	}
	p := totalPointJSON{T: page.AsOf.UnixMilli(), States: map[string]int{}}
	for _, m := range page.Items {
		if (scope == "node" && m.Node != id) || (scope == "site" && m.Device.GetSite() != id) {
			continue
		}
		if m.Stale {
			p.Stale++
			continue
		}
		p.Miners++
		p.States[grains.StateName(m.State)]++
		p.HashrateTHs += m.Telemetry.GetHashrate_5SThs()
		p.PowerW += m.Telemetry.GetPowerW()
		p.TempMaxC = max(p.TempMaxC, tempOf(m))
	}
	if p.HashrateTHs > 0 {
		p.EfficiencyJTH = p.PowerW / p.HashrateTHs
	}
	return p, nil
}
