package bootstrap

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/server/history"
)

// TestSplitDevicesGetTheNodesSite: a node enrolled with a site's code pairs its miners; every device record,
// the miner table's site filter and facets and the history's site group then carry that site, and a restarted
// server keeps them; the node itself knows the site from its enrollment and runs its site automation there.
func TestSplitDevicesGetTheNodesSite(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 3})
	n := len(s.fleet.Devices())

	check := func(when string) {
		t.Helper()
		devs, err := s.srv.Server.Store().Devices()
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != n {
			t.Fatalf("%s: %d device records, want %d", when, len(devs), n)
		}
		for _, d := range devs {
			if d.GetSite() != "test-site" || d.GetNodeId() != s.nodeID {
				t.Fatalf("%s: device %s at site %q of node %s, want test-site of %s", when, d.GetMinerId(), d.GetSite(), d.GetNodeId(), s.nodeID)
			}
		}
		var page struct {
			Items  []minerView `json:"items"`
			Facets struct {
				Sites []string `json:"sites"`
			} `json:"facets"`
		}
		if st := s.do("GET", "/api/v1/miners?site=test-site&facets=1", nil, &page); st != 200 {
			t.Fatalf("%s: miners by site: HTTP %d", when, st)
		}
		if len(page.Items) != n || len(page.Facets.Sites) != 1 || page.Facets.Sites[0] != "test-site" {
			t.Fatalf("%s: site filter gives %d miners (want %d), site facets %v", when, len(page.Items), n, page.Facets.Sites)
		}
		if st := s.do("GET", "/api/v1/miners?site=other-site", nil, &page); st != 200 || len(page.Items) != 0 {
			t.Fatalf("%s: another site gives HTTP %d with %d miners", when, st, len(page.Items))
		}
		waitFor(t, 10*time.Second, when+": the history's site group to hold every miner", func() bool {
			p, err := s.srv.Server.History().Live(history.ScopeGroup(history.ScopeSite, "test-site"))
			return err == nil && p.Miners+p.Stale == n && p.Miners > 0
		})
	}
	check("paired")

	// The node knows its site from its enrollment, and checks site policies against it.
	e, err := identity.LoadEnrollment(filepath.Join(s.nodeDir, nodeIdentityDir))
	if err != nil || e.Site != "test-site" {
		t.Fatalf("the node's enrollment names site %q (%v), want test-site", e.Site, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if as, err := s.node.Node.AutomationStatus(ctx); err != nil || as.Site != "test-site" {
		t.Fatalf("the node's automation runs at site %q (%v), want test-site", as.Site, err)
	}

	s.stopServer()
	s.startServer()
	s.waitLink(true)
	check("after a server restart")
}
