package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/hashfleet/hashfleet/server/grains"
)

// minerFilter is what the miner list applies on top of the FleetView's own filters (state, stale,
// search): equality filters on model, node and site, a sort, and facets (the values those filters can
// take). With any of them the API asks the view for every match once and pages here; 20,000 rows take a
// few milliseconds.
type minerFilter struct {
	model, node, site string
	sort              string
	desc              bool
	facets            bool
}

// sortKeys are the columns the list sorts by.
var sortKeys = []string{"id", "state", "node", "site", "model", "hashrate", "power", "temp", "efficiency", "last_seen"}

func parseMinerFilter(r *http.Request) (minerFilter, error) {
	v := r.URL.Query()
	f := minerFilter{model: v.Get("model"), node: v.Get("node"), site: v.Get("site"), facets: v.Get("facets") == "1"}
	for _, s := range []string{f.model, f.node, f.site} {
		if len(s) > 256 {
			return f, fmt.Errorf("%w: model, node and site are at most 256 bytes", ErrBadRequest)
		}
	}
	if s := v.Get("sort"); s != "" {
		f.sort, f.desc = strings.CutPrefix(s, "-")
		if !slices.Contains(sortKeys, f.sort) {
			return f, fmt.Errorf("%w: sort %q (want one of %s, - first for descending)", ErrBadRequest, s, strings.Join(sortKeys, ", "))
		}
	}
	if d := v.Get("order"); d != "" {
		switch d {
		case "asc":
		case "desc":
			f.desc = true
		default:
			return f, fmt.Errorf("%w: order %q (want asc or desc)", ErrBadRequest, d)
		}
	}
	return f, nil
}

// active: the view's own paging cannot answer the query.
func (f minerFilter) active() bool {
	return f.model != "" || f.node != "" || f.site != "" || (f.sort != "" && f.sort != "id") || f.desc || f.facets
}

type facetsJSON struct {
	Models []string `json:"models"`
	Nodes  []string `json:"nodes"`
	Sites  []string `json:"sites"`
}

func siteOf(r grains.MinerRow) string { return r.Device.GetSite() }

func modelOf(r grains.MinerRow) string {
	if m := r.Telemetry.GetModel(); m != "" {
		return m
	}
	return r.Device.GetModel()
}

func tempOf(r grains.MinerRow) float64 {
	t := 0.0
	for _, b := range r.Telemetry.GetBoards() {
		t = max(t, b.GetTempC())
	}
	return t
}

// compareRows orders rows by key, then id.
func compareRows(key string) func(a, b grains.MinerRow) int {
	by := func(a, b grains.MinerRow) int {
		switch key {
		case "state":
			return cmp.Compare(grains.StateName(a.State), grains.StateName(b.State))
		case "node":
			return cmp.Compare(a.Node, b.Node)
		case "site":
			return cmp.Compare(siteOf(a), siteOf(b))
		case "model":
			return cmp.Compare(modelOf(a), modelOf(b))
		case "hashrate":
			return cmp.Compare(a.Telemetry.GetHashrate_5SThs(), b.Telemetry.GetHashrate_5SThs())
		case "power":
			return cmp.Compare(a.Telemetry.GetPowerW(), b.Telemetry.GetPowerW())
		case "temp":
			return cmp.Compare(tempOf(a), tempOf(b))
		case "efficiency":
			return cmp.Compare(a.Telemetry.GetEfficiencyJth(), b.Telemetry.GetEfficiencyJth())
		case "last_seen":
			return a.LastSeen.Compare(b.LastSeen)
		}
		return 0
	}
	return func(a, b grains.MinerRow) int {
		if c := by(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
}

// apply filters, sorts and pages every match of the view's query.
func (f minerFilter) apply(all grains.MinerPage, offset, limit int) (grains.MinerPage, *facetsJSON) {
	var fc *facetsJSON
	if f.facets {
		models, nodes, sites := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, r := range all.Items {
			models[modelOf(r)], nodes[r.Node], sites[siteOf(r)] = true, true, true
		}
		fc = &facetsJSON{Models: sortedKeys(models), Nodes: sortedKeys(nodes), Sites: sortedKeys(sites)}
	}
	rows := all.Items[:0:0]
	for _, r := range all.Items {
		if (f.model != "" && modelOf(r) != f.model) || (f.node != "" && r.Node != f.node) || (f.site != "" && siteOf(r) != f.site) {
			continue
		}
		rows = append(rows, r)
	}
	if f.sort != "" && f.sort != "id" || f.desc {
		c := compareRows(f.sort)
		if f.desc {
			slices.SortStableFunc(rows, func(a, b grains.MinerRow) int { return -c(a, b) })
		} else {
			slices.SortStableFunc(rows, c)
		}
	}
	if limit <= 0 {
		limit = grains.DefaultPageLimit
	}
	limit = min(limit, grains.MaxPageLimit)
	out := grains.MinerPage{Total: len(rows), Offset: offset, Limit: limit, Counts: all.Counts, AsOf: all.AsOf}
	if offset < len(rows) {
		out.Items = rows[offset:min(len(rows), offset+limit)]
	}
	return out, fc
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
