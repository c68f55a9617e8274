package server

import (
	"fmt"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/server/keys"
	"github.com/hashfleet/hashfleet/server/store"
)

// policySigner signs site policies with the org's active command key (the key nodes verify commands with).
func policySigner(k *keys.Manager, clk clock.Clock) func(automation.Policy) (*automation.SignedPolicy, error) {
	return func(p automation.Policy) (*automation.SignedPolicy, error) {
		org, err := signing.ImportOrgKeys(k.OrgID(), k.Export())
		if err != nil {
			return nil, fmt.Errorf("sign site policy: %w", err)
		}
		return automation.SignPolicy(p, org, clk.Now())
	}
}

// siteNodes lists the confirmed, unrevoked nodes enrolled at site (the site of their enrollment code).
func siteNodes(st *store.Badger) func(site string) ([]string, error) {
	return func(site string) ([]string, error) {
		recs, err := st.NodeRecords()
		if err != nil {
			return nil, fmt.Errorf("nodes of site %s: %w", site, err)
		}
		var out []string
		for _, n := range recs {
			if n.GetSite() == site && n.GetConfirmed() && !n.GetRevoked() {
				out = append(out, n.GetNodeId())
			}
		}
		return out, nil
	}
}
