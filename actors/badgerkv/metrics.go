package badgerkv

import (
	"errors"
	"strconv"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Badger's own numbers reach Prometheus through a collector per store, registered by Open when
// Options.Registerer is set, with the constant label store=Options.Name:
//
//	hashfleet_store_badger_lsm_bytes{store}                 SST files on disk (DB.Size: Badger's expvar
//	hashfleet_store_badger_vlog_bytes{store}                size_bytes_lsm / size_bytes_vlog, refreshed by
//	                                                        Badger at open and then once a minute)
//	hashfleet_store_badger_tables{store,level}              SST tables per LSM level (live; L0 piling up
//	                                                        means compaction is behind and writes will stall)
//	hashfleet_store_badger_level_bytes{store,level}         bytes per LSM level (live)
//	hashfleet_store_badger_block_cache_hits_total{store}    block cache hits and misses (no series when
//	hashfleet_store_badger_block_cache_misses_total{store}  the store has no block cache)
//
// Badger's other expvars (badger_get_num_user, badger_put_num_user, ...) are process-wide sums over every
// store, so they are not bridged: they would not say which store is busy. A store that is closed reports no
// series; one reopened in the same process with the same name and registry takes over the collector.

// collector reports one store's numbers at scrape time. It only reads the DB (a metrics sink).
type collector struct {
	mu sync.Mutex
	db *badger.DB

	lsm, vlog, tables, levelBytes, hits, misses *prometheus.Desc
}

func newCollector(store string, db *badger.DB) *collector {
	cl := prometheus.Labels{"store": store}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, cl)
	}
	return &collector{db: db,
		lsm:        d("hashfleet_store_badger_lsm_bytes", "Bytes of the store's LSM tree (SST files) on disk, as Badger last measured them (at open, then every minute)."),
		vlog:       d("hashfleet_store_badger_vlog_bytes", "Bytes of the store's value log files on disk, as Badger last measured them (at open, then every minute)."),
		tables:     d("hashfleet_store_badger_tables", "SST tables per LSM level; tables piling up in level 0 mean compaction is behind.", "level"),
		levelBytes: d("hashfleet_store_badger_level_bytes", "Bytes of SST tables per LSM level.", "level"),
		hits:       d("hashfleet_store_badger_block_cache_hits_total", "Block cache hits since the store opened."),
		misses:     d("hashfleet_store_badger_block_cache_misses_total", "Block cache misses since the store opened."),
	}
}

func (c *collector) set(db *badger.DB) {
	c.mu.Lock()
	c.db = db
	c.mu.Unlock()
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lsm, c.vlog, c.tables, c.levelBytes, c.hits, c.misses} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	db := c.db
	c.mu.Unlock()
	if db == nil || db.IsClosed() {
		return
	}
	lsm, vlog := db.Size()
	ch <- prometheus.MustNewConstMetric(c.lsm, prometheus.GaugeValue, float64(lsm))
	ch <- prometheus.MustNewConstMetric(c.vlog, prometheus.GaugeValue, float64(vlog))
	for _, l := range db.Levels() {
		lv := strconv.Itoa(l.Level)
		ch <- prometheus.MustNewConstMetric(c.tables, prometheus.GaugeValue, float64(l.NumTables), lv)
		ch <- prometheus.MustNewConstMetric(c.levelBytes, prometheus.GaugeValue, float64(l.Size), lv)
	}
	if m := db.BlockCacheMetrics(); m != nil {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(m.Hits()))
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(m.Misses()))
	}
}

// registerCollector bridges db's numbers to reg under store. A collector already registered for this store
// (the store reopened in the same process) is pointed at db instead.
func registerCollector(reg prometheus.Registerer, store string, db *badger.DB) error {
	c := newCollector(store, db)
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*collector); ok {
			existing.set(db)
			return nil
		}
	}
	return err
}
