package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

type fakeSites struct {
	err     error
	policy  grains.SitePolicyRequest
	curtail grains.SiteCurtailRequest
}

func (f *fakeSites) PutSitePolicy(_ context.Context, r grains.SitePolicyRequest) (grains.SitePolicyView, error) {
	f.policy = r
	return grains.SitePolicyView{Site: r.Site, Version: 2, KeyID: "org/k", Policy: r.JSON,
		Nodes: []grains.SiteNodeOutcome{{Node: "n1", CommandID: "sitepol-v2-n1"}}}, f.err
}
func (f *fakeSites) SitePolicy(_ context.Context, site string) (grains.SitePolicyView, error) {
	return grains.SitePolicyView{Site: site, Version: 2, Policy: []byte(`{"version":2}`)}, f.err
}
func (f *fakeSites) SiteCurtail(_ context.Context, r grains.SiteCurtailRequest) (grains.SiteCurtailStarted, error) {
	f.curtail = r
	return grains.SiteCurtailStarted{Site: r.Site, EventID: "ev-1"}, f.err
}
func (f *fakeSites) SiteCurtailStatus(_ context.Context, site string) ([]grains.NodeCurtail, error) {
	return []grains.NodeCurtail{{Node: "n1", Status: &pb.CurtailStatus{EventId: "ev-1", State: "holding", TargetKw: 5, AchievedKw: 5.2,
		Curtailed: []string{"a", "b"}}}, {Node: "n2"}}, f.err
}

func sitesAPI(t *testing.T, s Sites) *API {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AdminToken, cfg.Sites = token, s
	a, err := New(cfg, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func siteCall(a *API, method, path, body string) (int, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	a.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestSiteEndpoints(t *testing.T) {
	f := &fakeSites{}
	a := sitesAPI(t, f)
	if code, body := siteCall(a, "PUT", "/api/v1/sites/s1/policy", `{"rules":{}}`); code != 200 || !strings.Contains(body, `"version":2`) ||
		!strings.Contains(body, `"command_id":"sitepol-v2-n1"`) || f.policy.Site != "s1" || f.policy.Actor == "" {
		t.Fatalf("PUT: %d %s %+v", code, body, f.policy)
	}
	for _, bad := range []string{"", "not json", `{"rules":`, strings.Repeat("[", 10)} {
		if code, _ := siteCall(a, "PUT", "/api/v1/sites/s1/policy", bad); code != 400 {
			t.Fatalf("PUT %q: %d", bad, code)
		}
	}
	if code, _ := siteCall(a, "PUT", "/api/v1/sites/s1/policy", `{"pad":"`+strings.Repeat("x", int(DefaultMaxBodyBytes))+`"}`); code != 400 {
		t.Fatalf("oversized PUT: %d", code)
	}
	if code, body := siteCall(a, "GET", "/api/v1/sites/s1/curtail", ""); code != 200 || !strings.Contains(body, `"miners_curtailed":2`) ||
		!strings.Contains(body, `"status":null`) {
		t.Fatalf("GET curtail: %d %s", code, body)
	}
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if code, _ := siteCall(a, "POST", "/api/v1/sites/s1/curtail", fmt.Sprintf(`{"target_kw":7.5,"miner_ids":["a"],"end_at":%q}`, end.Format(time.RFC3339))); code != 202 ||
		f.curtail.TargetKW != 7.5 || !f.curtail.EndAt.Equal(end) || len(f.curtail.MinerIDs) != 1 {
		t.Fatalf("POST curtail: %d %+v", code, f.curtail)
	}
	for _, bad := range []string{`{"target_kw":"many"}`, `{"surprise":1}`, `{"end_at":"tomorrow"}`, `[]`} {
		if code, _ := siteCall(a, "POST", "/api/v1/sites/s1/curtail", bad); code != 400 {
			t.Fatalf("POST curtail %s: %d", bad, code)
		}
	}
	for err, want := range map[error]int{
		fmt.Errorf("%w: x", grains.ErrInvalidSite): 400, fmt.Errorf("%w: x", grains.ErrUnknownSite): 404,
		fmt.Errorf("%w: x", grains.ErrStalePolicy): 409, fmt.Errorf("%w: x", grains.ErrUnknownMiner): 400,
		fmt.Errorf("%w: x", grains.ErrStore): 503,
	} {
		f.err = err
		if code, _ := siteCall(a, "PUT", "/api/v1/sites/s1/policy", `{}`); code != want {
			t.Fatalf("%v: %d, want %d", err, code, want)
		}
	}
	a = sitesAPI(t, nil)
	if code, _ := siteCall(a, "GET", "/api/v1/sites/s1/policy", ""); code != 503 {
		t.Fatalf("no sites backend: %d", code)
	}
}
