package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/simulations/oracle"
)

func trial(seed int64, viol int, failover time.Duration) Trial {
	t0 := time.Unix(1_700_000_000, 0)
	t := Trial{Scenario: "kill-active", Seed: seed, Faults: []string{"#1 kill"},
		Commands: Commands{Issued: 10, Acked: 9, Succeeded: 9},
		Timeline: &Timeline{Start: t0, End: t0.Add(10 * time.Second), Nodes: []string{"node1", "node2"}, Miners: []string{"m<1>"},
			Spans: []Span{{Row: "node1", Kind: "lease", From: t0, To: t0.Add(4 * time.Second), Label: "epoch 1", Epoch: 1},
				{Row: "cloud", Kind: "fault", From: t0.Add(time.Second), To: t0.Add(2 * time.Second), Label: "kill-cloud"}},
			Marks: []Mark{{Row: "m<1>", At: t0.Add(3 * time.Second), Writer: "node1", Epoch: 1, Label: "addpool & <x>"}}}}
	for range viol {
		t.Violations = append(t.Violations, oracle.Violation{Invariant: oracle.InvExactlyOnce, Kind: oracle.KindLost, Detail: "lost"})
	}
	if failover > 0 {
		t.Failovers = []Seconds{Seconds(failover)}
	}
	return t
}

func TestReportAggregatesAndPicksTheWorst(t *testing.T) {
	var r Report
	r.Add("kill-active", "kill", trial(1, 0, 6*time.Second))
	r.Add("kill-active", "kill", trial(2, 2, 7*time.Second))
	r.Add("wan-site", "wan", trial(3, 0, 0))
	if r.Violations() != 2 || len(r.FailedSeeds()) != 1 || r.FailedSeeds()[0] != "kill-active 2" {
		t.Fatalf("violations %d, failed %v", r.Violations(), r.FailedSeeds())
	}
	s := r.Scenarios[0]
	if s.Trials != 2 || s.Failover.N != 2 || time.Duration(s.Failover.P50) != 6*time.Second || time.Duration(s.Failover.Max) != 7*time.Second {
		t.Fatalf("scenario %+v", s)
	}
	if s.Commands.Issued != 20 || s.ByInvariant[oracle.InvExactlyOnce] != 2 {
		t.Fatalf("counts %+v %v", s.Commands, s.ByInvariant)
	}
	if w := r.Worst(); w == nil || w.Seed != 2 {
		t.Fatalf("worst %+v", w)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []struct {
			Name       string `json:"name"`
			Trials     int    `json:"trials"`
			Violations int    `json:"violations"`
			Failover   struct {
				P99 float64 `json:"p99_s"`
			} `json:"failover"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Scenarios) != 2 || back.Scenarios[0].Violations != 2 || back.Scenarios[0].Failover.P99 != 7 {
		t.Fatalf("JSON %s", js.String())
	}
	var tab bytes.Buffer
	if err := r.WriteTable(&tab); err != nil || !strings.Contains(tab.String(), "6.00/7.00/7.00") {
		t.Fatalf("table %q %v", tab.String(), err)
	}
}

// TestSVGEscapesNames: ids and labels are text, never markup.
func TestSVGEscapesNames(t *testing.T) {
	tr := trial(1, 0, 0)
	var b bytes.Buffer
	if err := WriteSVG(&b, tr.Timeline); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if strings.Contains(s, "m<1>") || strings.Contains(s, "& <x>") || !strings.Contains(s, "m&lt;1&gt;") {
		t.Fatalf("unescaped text in SVG:\n%s", s)
	}
	if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") {
		t.Fatal("not an SVG document")
	}
	// An empty timeline still draws (no division by zero).
	b.Reset()
	if err := WriteSVG(&b, &Timeline{}); err != nil || !strings.Contains(b.String(), "</svg>") {
		t.Fatalf("empty timeline: %v", err)
	}
}

func TestSecondsRoundTrip(t *testing.T) {
	b, _ := json.Marshal(Seconds(1500 * time.Millisecond))
	if string(b) != "1.500" {
		t.Fatalf("%s", b)
	}
	var s Seconds
	if err := json.Unmarshal(b, &s); err != nil || time.Duration(s) != 1500*time.Millisecond {
		t.Fatalf("%v %v", s, err)
	}
	if err := json.Unmarshal([]byte(`"x"`), &s); err == nil {
		t.Fatal("a string accepted as seconds")
	}
}
