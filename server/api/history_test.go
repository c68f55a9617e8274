package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/history"
)

// historyServer is the API over real HTTP with a real history in a Badger directory: m1 and m2 on node n1
// (site s1), 10 minutes of samples every 5 s, m1 at 100 TH/s and 3000 W, m2 at 50 TH/s and 1500 W.
func historyServer(t *testing.T) (*httptest.Server, time.Time) {
	t.Helper()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	hc := history.DefaultConfig()
	hc.Dir, hc.Clock = t.TempDir(), clk
	h, err := history.Open(hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.SetGroups(map[string][]string{"node:n1": {"m1", "m2"}, "site:s1": {"m1", "m2"}}); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 120; k++ {
		at := start.Add(time.Duration(k) * 5 * time.Second)
		clk.Set(at)
		var batch []*pb.Telemetry
		for _, m := range []struct {
			id    string
			ths   float64
			watts float64
		}{{"m1", 100, 3000}, {"m2", 50, 1500}} {
			batch = append(batch, &pb.Telemetry{MinerId: m.id, ObservedAtUnixMs: at.UnixMilli(), State: pb.MinerState_MINER_STATE_MINING,
				Hashrate_5SThs: m.ths, PowerW: m.watts, FansRpm: []int32{4000, 4200}, Boards: []*pb.Board{{TempC: 60}}})
		}
		if _, err := h.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(start.Add(10*time.Minute + 2*time.Second))
	cfg := DefaultConfig()
	cfg.AdminToken, cfg.History, cfg.Clock = token, h, clk
	fresh := grains.MinerRow{ID: "m1", Node: "n1", State: pb.MinerState_MINER_STATE_MINING, Device: &pb.Device{MinerId: "m1", Site: "s1"},
		Telemetry: &pb.Telemetry{MinerId: "m1", Hashrate_5SThs: 100, PowerW: 3000}}
	m2 := fresh
	m2.ID, m2.Telemetry = "m2", &pb.Telemetry{MinerId: "m2", Hashrate_5SThs: 50, PowerW: 1500}
	// m3's node stream is down: stale, whatever its last sample said.
	m3 := fresh
	m3.ID, m3.Node, m3.Stale, m3.Telemetry = "m3", "n2", true, &pb.Telemetry{MinerId: "m3", Hashrate_5SThs: 80, PowerW: 2000}
	a, err := New(cfg, &fakeBackend{page: grains.MinerPage{Items: []grains.MinerRow{fresh, m2, m3}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv, start
}

func getJSON(t *testing.T, base, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return res.StatusCode
}

func TestSeriesOverHTTP(t *testing.T) {
	srv, start := historyServer(t)
	from, to := start.UnixMilli(), start.Add(10*time.Minute).UnixMilli()
	var s struct {
		Unit, Resolution string
		StepS            float64 `json:"step_s"`
		Points           []struct {
			T        int64
			V        float64
			Min, Max *float64
		}
	}
	if st := getJSON(t, srv.URL, fmt.Sprintf("/api/v1/series?scope=miner&id=m1&metric=hashrate&from=%d&to=%d&step=1m", from, to), &s); st != 200 {
		t.Fatalf("miner series: %d", st)
	}
	if s.Unit != "TH/s" || s.StepS != 60 || len(s.Points) != 10 || s.Points[0].V != 100 || s.Points[0].Min == nil {
		t.Fatalf("miner hashrate series %+v", s)
	}
	if st := getJSON(t, srv.URL, fmt.Sprintf("/api/v1/series?id=m1&metric=fans&from=%d&to=%d&step=30s", from, to), &s); st != 200 || len(s.Points) != 20 || s.Points[3].V != 4000 || s.Resolution != "raw" {
		t.Fatalf("fans series: %d %+v", st, s)
	}
	// Group scopes read the rollups: the closed minutes (the open tenth minute is added from memory).
	for _, scope := range []string{"node&id=n1", "site&id=s1", "org"} {
		if st := getJSON(t, srv.URL, fmt.Sprintf("/api/v1/series?scope=%s&metric=power&from=%d&to=%d&step=1m", scope, from, to), &s); st != 200 {
			t.Fatalf("%s power: %d", scope, st)
		}
		if len(s.Points) < 9 || s.Points[0].V != 4500 {
			t.Fatalf("%s power points %+v", scope, s.Points)
		}
	}
	var tot struct {
		Live struct {
			Miners      int
			Stale       int
			HashrateTHs float64 `json:"hashrate_ths"`
			States      map[string]int
		}
		Points []struct {
			HashrateTHs   float64 `json:"hashrate_ths"`
			EfficiencyJTH float64 `json:"efficiency_jth"`
			States        map[string]int
		}
	}
	if st := getJSON(t, srv.URL, fmt.Sprintf("/api/v1/fleet/totals?from=%d&to=%d&step=1m", from, to), &tot); st != 200 {
		t.Fatalf("totals: %d", st)
	}
	if tot.Live.Miners != 2 || tot.Live.Stale != 1 || tot.Live.HashrateTHs != 150 || tot.Live.States["mining"] != 2 || len(tot.Points) < 9 ||
		tot.Points[0].HashrateTHs != 150 || tot.Points[0].EfficiencyJTH != 30 || tot.Points[0].States["mining"] != 2 {
		t.Fatalf("totals %+v", tot)
	}
	if st := getJSON(t, srv.URL, "/api/v1/fleet/totals?scope=node&id=n1", &tot); st != 200 || tot.Live.Miners != 2 {
		t.Fatalf("node totals: %d %+v", st, tot.Live)
	}
}

func TestSeriesRefusesBadQueries(t *testing.T) {
	srv, start := historyServer(t)
	ms := start.UnixMilli()
	for q, want := range map[string]int{
		"metric=bogus&id=m1":                                            400,
		"metric=hashrate":                                               400, // no id
		"metric=hashrate&id=m1&scope=planet":                            400,
		"metric=fans&scope=node&id=n1":                                  400,
		"metric=hashrate&id=m1&from=yesterday":                          400,
		"metric=hashrate&id=m1&step=-5s":                                400,
		"metric=hashrate&id=m1&step=fast":                               400,
		"metric=hashrate&scope=node&id=nope":                            404,
		"metric=hashrate&id=" + url.QueryEscape("a\x00b"):               400,
		fmt.Sprintf("metric=hashrate&id=m1&from=%d&to=%d", ms, ms-1000): 400,
		"metric=hashrate&id=m1&to=-5":                                   400,
		"metric=hashrate&id=never-seen":                                 200, // a miner without history: no points
	} {
		if st := getJSON(t, srv.URL, "/api/v1/series?"+q, nil); st != want {
			t.Errorf("series?%s: %d, want %d", q, st, want)
		}
	}
	for q, want := range map[string]int{"scope=site": 400, "scope=moon": 400, "scope=site&id=zz": 404, "from=x": 400} {
		if st := getJSON(t, srv.URL, "/api/v1/fleet/totals?"+q, nil); st != want {
			t.Errorf("totals?%s: %d, want %d", q, st, want)
		}
	}
}

func TestMinerListSortFilterFacets(t *testing.T) {
	row := func(id, node, site, model string, ths float64) grains.MinerRow {
		return grains.MinerRow{ID: id, Node: node, Device: &pb.Device{MinerId: id, Site: site, Model: model},
			Telemetry: &pb.Telemetry{MinerId: id, Hashrate_5SThs: ths}}
	}
	b := &fakeBackend{page: grains.MinerPage{Total: 4, Items: []grains.MinerRow{
		row("a", "n1", "s1", "S19", 100), row("b", "n1", "s1", "S21", 200), row("c", "n2", "s2", "S19", 150), row("d", "n2", "", "S19", 50)}}}
	srv := httptest.NewServer(newAPI(t, b).Handler())
	t.Cleanup(srv.Close)
	var page struct {
		Total  int
		Items  []struct{ ID, Site string }
		Facets *struct{ Models, Nodes, Sites []string }
	}
	ids := func() string {
		s := ""
		for _, it := range page.Items {
			s += it.ID
		}
		return s
	}
	cases := map[string]string{
		"model=S19":                       "acd",
		"model=S19&sort=-hashrate":        "cad",
		"sort=hashrate":                   "dacb",
		"sort=hashrate&order=desc":        "bcad",
		"node=n2&site=s2":                 "c",
		"sort=-hashrate&offset=1&limit=2": "ca",
		"site=nowhere":                    "",
	}
	for q, want := range cases {
		if st := getJSON(t, srv.URL, "/api/v1/miners?"+q, &page); st != 200 || ids() != want {
			t.Errorf("miners?%s: %d %q, want %q", q, st, ids(), want)
		}
	}
	if getJSON(t, srv.URL, "/api/v1/miners?facets=1&limit=1", &page); page.Facets == nil || len(page.Facets.Models) != 2 ||
		len(page.Facets.Sites) != 2 || len(page.Facets.Nodes) != 2 || page.Total != 4 || len(page.Items) != 1 {
		t.Fatalf("facets page %+v", page)
	}
	for _, q := range []string{"sort=color", "order=up", "model=" + url.QueryEscape(string(make([]byte, 300)))} {
		if st := getJSON(t, srv.URL, "/api/v1/miners?"+q, nil); st != 400 {
			t.Errorf("miners?%s: %d, want 400", q, st)
		}
	}
}
