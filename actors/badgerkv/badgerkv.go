// Package badgerkv opens Badger the way every hashfleet store wants it: sized for a small node rather than
// Badger's server defaults, logging through slog, and with protobuf helpers for keyed records.
package badgerkv

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("not found")

// Options sizes a store. Zero values take the documented defaults.
type Options struct {
	// Dir holds the store; empty opens an in-memory store (tests, the in-memory twin).
	Dir string
	// MemTableSize in bytes. Default 8 MiB (Badger's 64 MiB × 5 tables is sized for servers).
	MemTableSize int64
	// BlockCacheSize in bytes. Default 16 MiB.
	BlockCacheSize int64
	// ValueLogFileSize in bytes. Default 64 MiB (Badger's default is 1 GiB).
	ValueLogFileSize int64
	// SyncWrites makes every commit fsync. Stores whose records must survive kill -9 (seq mark, audit,
	// spool) set it; telemetry caches do not.
	SyncWrites bool
	// ReadOnly opens without taking the write lock (store inspect).
	ReadOnly bool
	Logger   *slog.Logger
	// Registerer, when set, receives the store's Badger numbers (sizes, tables per level, block cache; see
	// metrics.go) labelled store=Name.
	Registerer prometheus.Registerer
	// Name labels the store's series ("cloud", "node", "spool"). Required with Registerer.
	Name string
	// Tune, when set, adjusts the Badger options last, for a store whose write pattern the defaults do not
	// fit (the node spool: a write-then-delete queue of large values).
	Tune func(badger.Options) badger.Options
}

// Open opens (creating if needed) a Badger store.
func Open(o Options) (*badger.DB, error) {
	bo := badger.DefaultOptions(o.Dir)
	if o.Dir == "" {
		bo = bo.WithInMemory(true)
	} else if !o.ReadOnly {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", o.Dir, err)
		}
	}
	bo = bo.WithMemTableSize(orDefault(o.MemTableSize, 8<<20)).
		WithBlockCacheSize(orDefault(o.BlockCacheSize, 16<<20)).
		WithValueLogFileSize(orDefault(o.ValueLogFileSize, 64<<20)).
		WithNumMemtables(2).WithNumLevelZeroTables(2).WithNumLevelZeroTablesStall(4).
		WithNumCompactors(2).
		WithSyncWrites(o.SyncWrites).
		WithReadOnly(o.ReadOnly).
		WithLogger(slogAdapter{log: orLogger(o.Logger)})
	if o.Tune != nil {
		bo = o.Tune(bo)
	}
	if o.Registerer != nil && o.Name == "" {
		return nil, fmt.Errorf("open store %q: Options.Name is required with a Registerer", o.Dir)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", o.Dir, err)
	}
	if o.Registerer != nil {
		if err := registerCollector(o.Registerer, o.Name, db); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open store %q: metrics: %w", o.Dir, err)
		}
	}
	return db, nil
}

// GetProto reads key into m; ErrNotFound when absent.
func GetProto(txn *badger.Txn, key []byte, m proto.Message) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return item.Value(func(v []byte) error {
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("decode %s as %T: %w", key, m, err)
		}
		return nil
	})
}

// SetProto writes m at key inside txn.
func SetProto(txn *badger.Txn, key []byte, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T for %s: %w", m, key, err)
	}
	return txn.Set(key, b)
}

func orDefault(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

func orLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// slogAdapter routes Badger's printf logging to slog; Badger's info chatter goes to debug.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Errorf(f string, v ...interface{}) {
	a.log.Error(fmt.Sprintf(f, v...), "lib", "badger")
}
func (a slogAdapter) Warningf(f string, v ...interface{}) {
	a.log.Warn(fmt.Sprintf(f, v...), "lib", "badger")
}
func (a slogAdapter) Infof(f string, v ...interface{}) {
	a.log.Debug(fmt.Sprintf(f, v...), "lib", "badger")
}
func (a slogAdapter) Debugf(f string, v ...interface{}) {
	a.log.Debug(fmt.Sprintf(f, v...), "lib", "badger")
}
