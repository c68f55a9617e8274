package badgerkv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// gauge returns the value of name with the given labels; ok false when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func TestCollectorReportsEachStore(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	dir := t.TempDir()
	a, err := Open(Options{Dir: dir, SyncWrites: true, Registerer: reg, Name: "node"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Registerer: reg, Name: "spool"}) // in memory: no files, no sizes, still tables
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Enough data that a memtable flush puts a table in L0.
	val := []byte(strings.Repeat("x", 1024))
	for i := range 20 {
		wb := a.NewWriteBatch()
		for j := range 1000 {
			if err := wb.Set(fmt.Appendf(nil, "k/%d/%d", i, j), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.View(func(txn *badger.Txn) error { _, err := txn.Get([]byte("k/1/1")); return err }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hashfleet_store_badger_lsm_bytes", "hashfleet_store_badger_vlog_bytes"} {
		for _, store := range []string{"node", "spool"} {
			if _, ok := gauge(t, reg, name, map[string]string{"store": store}); !ok {
				t.Errorf("%s{store=%q} missing", name, store)
			}
		}
	}
	tables := 0.0
	for l := range 7 {
		v, _ := gauge(t, reg, "hashfleet_store_badger_tables", map[string]string{"store": "node", "level": fmt.Sprint(l)})
		tables += v
	}
	if tables < 1 {
		t.Errorf("node store: %v tables after 20 MB of writes, want at least one", tables)
	}
	if _, ok := gauge(t, reg, "hashfleet_store_badger_block_cache_misses_total", map[string]string{"store": "node"}); !ok {
		t.Error("block cache misses missing")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	// Closed: no series. Reopened under the same name and registry: the collector follows the new DB.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := gauge(t, reg, "hashfleet_store_badger_lsm_bytes", map[string]string{"store": "node"}); ok {
		t.Error("a closed store still reports")
	}
	a, err = Open(Options{Dir: dir, Registerer: reg, Name: "node"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if v, ok := gauge(t, reg, "hashfleet_store_badger_lsm_bytes", map[string]string{"store": "node"}); !ok || v <= 0 {
		t.Errorf("reopened store: lsm bytes %v (present %v), want > 0", v, ok)
	}

	if _, err := Open(Options{Registerer: reg}); err == nil {
		t.Error("a Registerer without a Name was accepted")
	}
}
