package store

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
)

// The node store holds kilobytes (the seq mark, commands, results, the audit log, the ownership list), so on
// disk it runs with a 1 MiB memtable instead of badgerkv's 8 MiB: Badger allocates the memtable's arena (size +
// 2×15% for the largest batch) up front, ≈1.3 MB of heap instead of ≈10.4 MB.
const (
	memTableSize = 1 << 20
	// valueThreshold must stay under Badger's largest batch (15% of the memtable, 157 KB): larger values (a
	// 10,000-device ownership list is ≈1 MB) go to the value log and count as a pointer in the batch.
	valueThreshold = 64 << 10
)

// sized applies the node store's memtable size to bo. In memory (no DataDir) every value lives in the
// memtable, so the default stays.
func sized(o Options, bo badgerkv.Options) badgerkv.Options {
	if o.DataDir == "" {
		return bo
	}
	bo.MemTableSize = memTableSize
	bo.Tune = func(b badger.Options) badger.Options { return b.WithValueThreshold(valueThreshold) }
	return bo
}

// settleWAL flushes a memtable log left by an unclean stop of a node that ran with a larger memtable (before
// the 1 MiB one): replayed into a 1 MiB memtable it could overflow the arena, which Badger treats as fatal. It
// opens the store once with the memtable size that wrote the log (Badger sizes a log file at twice the
// memtable) and closes it, which writes the log to a table. A clean stop leaves no log, and this costs a glob.
func settleWAL(o Options) error {
	if o.DataDir == "" {
		return nil
	}
	logs, _ := filepath.Glob(filepath.Join(o.DataDir, "*.mem"))
	var largest int64
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	if largest <= 2*memTableSize {
		return nil
	}
	db, err := badgerkv.Open(badgerkv.Options{Dir: o.DataDir, SyncWrites: true, Logger: o.Logger, MemTableSize: largest / 2})
	if err != nil {
		return fmt.Errorf("replay the memtable log of a larger memtable: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("replay the memtable log of a larger memtable: %w", err)
	}
	return nil
}
