package history

import (
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
)

// The store inspector reads a history directory with Schema: every key matches a prefix and decodes.
func TestSchemaInspect(t *testing.T) {
	x := newHarness(t)
	if err := x.h.SetGroups(map[string][]string{"site/a": {"m/1"}}); err != nil {
		t.Fatal(err)
	}
	for d := time.Duration(0); d <= 61*time.Minute; d += 20 * time.Second {
		x.appendAt(t0.Add(d), tel("m/1", t0.Add(d), 100, 3000, mining))
	}
	x.h.Close()
	in, err := inspect.Open(inspect.DefaultConfig(x.dir, Schema()))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, p := range in.Prefixes() {
		if p.Name == "(unknown)" && p.Keys > 0 {
			t.Fatalf("keys matching no prefix: %+v", p)
		}
	}
	for _, name := range []string{"raw", "minute", "hour", "group-minute", "group-hour", "groups", "miner-index", "format"} {
		rs, _, err := in.Scan(name, 2)
		if err != nil || len(rs) == 0 {
			t.Fatalf("scan %s: %d records, %v", name, len(rs), err)
		}
		for _, r := range rs {
			if (r.Note != "" && name != "miner-index") || r.Prefix != name {
				t.Fatalf("scan %s: %+v", name, r)
			}
		}
	}
	r, err := in.Get("h/m/m/1@2024-03-01T10:00:00Z")
	if err != nil || !strings.Contains(string(r.Value), "hashrate_ths") {
		t.Fatalf("get minute: %+v %v", r, err)
	}
}
