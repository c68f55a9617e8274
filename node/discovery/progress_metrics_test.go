package discovery

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestProgressGauges: while a scan runs, the gauges show how far it is; when it ends they drop to zero.
func TestProgressGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := testConfig()
	cfg.Concurrency, cfg.ProbeTimeout, cfg.ProgressInterval = 2, 5*time.Second, 10*time.Millisecond
	cfg.Metrics = NewMetrics(reg)
	m := cfg.Metrics
	h := newActorHarness(t, cfg)
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "long", Targets: []string{slowTargets(t, 16)}}, Subscriber: h.sub}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.running); got != 1 {
		t.Errorf("running scans %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.targets); got != 16 {
		t.Errorf("addresses %v, want 16", got)
	}
	if _, err := ask[*ScanStatus](h, &CancelScan{ScanID: "long"}); err != nil {
		t.Fatal(err)
	}
	h.finished(h.subMsgs, "long")
	if _, err := ask[*ScanList](h, &ListScans{}); err != nil { // the actor has handled the end
		t.Fatal(err)
	}
	for name, g := range map[string]prometheus.Gauge{"running": m.running, "addresses": m.targets, "probed": m.probed} {
		if got := testutil.ToFloat64(g); got != 0 {
			t.Errorf("%s %v after the scan ended, want 0", name, got)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
