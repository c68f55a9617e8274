package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// TestNodeSchemaMatchesJSON: every field GET /api/v1/nodes writes for a node, and for its forwarded process
// snapshot, is in openapi.json's Node and NodeProcess schemas, and the schemas list nothing it does not write.
func TestNodeSchemaMatchesJSON(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for schema, typ := range map[string]reflect.Type{"Node": reflect.TypeFor[nodeJSON](), "NodeProcess": reflect.TypeFor[nodeProcessJSON]()} {
		var written, documented []string
		for f := range typ.Fields() {
			written = append(written, strings.Split(f.Tag.Get("json"), ",")[0])
		}
		for p := range doc.Components.Schemas[schema].Properties {
			documented = append(documented, p)
		}
		slices.Sort(written)
		slices.Sort(documented)
		if !slices.Equal(written, documented) {
			t.Errorf("schema %s documents %v\nthe API writes %v", schema, documented, written)
		}
	}
}

func TestNodeProcessJSON(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := grains.NodeStatus{ID: "n1"}
	if b, _ := json.Marshal(toNode(n, now)); !strings.Contains(string(b), `"process":null`) {
		t.Fatalf("a node that forwards nothing: %s", b)
	}
	n.Process = &pb.NodeMetrics{AtUnixMs: now.Add(-3 * time.Second).UnixMilli(), CpuSeconds: 1.5, ResidentMemoryBytes: 64 << 20,
		Goroutines: 120, OpenFds: 30, GcPauseP99Seconds: 0.0004, MinersByState: map[string]uint32{"mining": 7},
		SpoolItems: 12, SpoolBytes: 4096, UptimeSeconds: 600, SoftwareVersion: "1.0"}
	n.ProcessReceivedAt = now.Add(-2 * time.Second)
	p := toNode(n, now).Process
	if p == nil || *p.AgeS != 2 || p.Goroutines != 120 || p.MinersByState["mining"] != 7 || p.ResidentMemoryBytes != 64<<20 ||
		!p.At.Equal(now.Add(-3*time.Second)) || p.SoftwareVersion != "1.0" || p.SpoolItems != 12 {
		t.Fatalf("process %+v", p)
	}
}
