package localui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/localui"
)

// TestPairPanel: a pair member's pages show pair, holder, epoch, this node's mode and write deadline; the
// panel is absent for a lone node, and its strings (node ids come from the cloud) are escaped.
func TestPairPanel(t *testing.T) {
	h := newHarness(t, 2)
	c := h.client("")
	c.login()
	if strings.Contains(c.get("/").body, `data-testid="pair-panel"`) {
		t.Fatal("pair panel on a lone node")
	}
	until := time.Date(2025, 3, 1, 12, 0, 4, 500e6, time.UTC)
	h.site.SetLink(localui.LinkView{Configured: true, Up: true, Since: h.clock.Now(), Pair: &localui.PairView{
		PairID: "p1", Peer: "node-b", PeerState: "alive", Holder: "node-a", Epoch: 7, Mode: "lease", WritesUntil: until}})
	body := c.get("/").body
	for _, want := range []string{`data-testid="pair-panel" data-mode="lease"`, "pair p1", "holder node-a", "epoch 7",
		"this node: lease until 12:00:04.500", "partner node-b alive"} {
		if !strings.Contains(body, want) {
			t.Fatalf("pair panel lacks %q:\n%s", want, body)
		}
	}
	h.site.SetLink(localui.LinkView{Configured: true, Up: true, Since: h.clock.Now(), Pair: &localui.PairView{
		PairID: `<script>x</script>`, Holder: "", Epoch: 0, Mode: "standby"}})
	body = c.get("/").body
	if strings.Contains(body, "<script>x") || !strings.Contains(body, "holder none") || strings.Contains(body, " until ") {
		t.Fatalf("standby panel:\n%s", body)
	}
}
