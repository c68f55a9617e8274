package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/server/store"
)

// TestPairDeclarationLosesToStoredClaim: a device another declaration stored first (another Org activation
// or member, which this Org has not loaded) is refused by the store's claim, answered as a conflict (409),
// and nothing is stored for the loser.
func TestPairDeclarationLosesToStoredClaim(t *testing.T) {
	h := newPairHarness(t)
	other := &store.PairRecord{ID: "elsewhere", OrgID: h.srv.cfg.OrgID, Site: "s1", Members: [2]string{"nx", "ny"}, Standby: "ny",
		Devices: []string{"m5"}}
	if err := h.srv.store.PutPair(other); err != nil {
		t.Fatal(err)
	}
	code, b := h.do("POST", "/api/v1/pairs", `{"site":"s1","members":["na","nd"],"standby":"nd","devices":["m1","m5"]}`, nil)
	if code != http.StatusConflict || !strings.Contains(string(b), "m5") {
		t.Fatalf("declaration naming a claimed device: %d %s", code, b)
	}
	recs, err := h.srv.store.Pairs()
	if err != nil || len(recs) != 1 || recs[0].ID != "elsewhere" {
		t.Fatalf("stored pairs %+v, %v", recs, err)
	}
	// The members and devices are still free for a declaration that does not clash.
	h.declare(`{"site":"s1","members":["na","nd"],"standby":"nd","devices":["m1"]}`)
}
