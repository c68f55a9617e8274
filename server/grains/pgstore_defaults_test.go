package grains

import (
	"testing"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
)

// TestSharedStoreOffersPairsAndSites: on the shared Postgres store the Org keeps pair declarations, leases
// and site records there (no ErrPairsUnsupported, no "keeps no site records"), as it does on Badger.
func TestSharedStoreOffersPairsAndSites(t *testing.T) {
	pg := &pgstore.Store{} // the wiring is by type; no connection is made
	cfg := DefaultConfig()
	cfg.Store, cfg.Clock = pg, clock.Real()
	if err := pairDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	if p, ok := cfg.Pairs.(*pgstore.Store); !ok || p != pg {
		t.Fatalf("pairs default %T", cfg.Pairs)
	}
	if l, ok := cfg.Leases.(*pgstore.Store); !ok || l != pg {
		t.Fatalf("leases default %T", cfg.Leases)
	}
	f := &Fleet{cfg: cfg}
	s, err := f.sites()
	if err != nil {
		t.Fatalf("sites on Postgres: %v", err)
	}
	if _, ok := s.(store.Sites); !ok {
		t.Fatalf("sites %T", s)
	}
}
