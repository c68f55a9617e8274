package inspect

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config says what to inspect and how.
type Config struct {
	// Dir is the store's Badger directory. Required.
	Dir string
	// Schemas are the store kinds the inspector knows; the one matching most keys is the store's kind.
	// Required (bootstrap.StoreSchemas lists hashfleet's).
	Schemas []Schema
	// Kind, when set, skips detection and reads the store as that schema.
	Kind string
	// RecoverCopy lets the inspector read a store that was not closed cleanly: it copies the directory to a
	// private temporary directory, lets Badger replay its log there, and inspects the copy (removed at Close).
	// The directory itself is still never written. Default false: such a store gets ErrUnclean.
	RecoverCopy bool
	// TempDir is where RecoverCopy copies to; "" is os.TempDir().
	TempDir string
	// Now is the time ages are computed against. Default time.Now.
	Now func() time.Time
	// Logger receives Badger's own log lines; default discards them (errors are returned).
	Logger *slog.Logger
	// MemTableSize is the arena Badger replays a write-ahead log into. Default (0): the larger of 64 MiB and
	// the largest log file in Dir, which holds any memtable the writer could have filled.
	MemTableSize int64
}

// DefaultConfig returns a Config for dir with the given schemas.
func DefaultConfig(dir string, schemas ...Schema) Config {
	return Config{Dir: dir, Schemas: schemas, Now: time.Now}
}

// Validate reports a configuration the caller must fix.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("inspect: no store directory given"))
	}
	if len(c.Schemas) == 0 {
		errs = append(errs, errors.New("inspect: no schemas given"))
	}
	seen := map[string]bool{}
	for _, s := range c.Schemas {
		if s.Kind == "" || seen[s.Kind] {
			errs = append(errs, fmt.Errorf("inspect: schema kind %q is empty or repeated", s.Kind))
		}
		seen[s.Kind] = true
		for _, p := range s.Prefixes {
			if p.Name == "" || p.Prefix == "" {
				errs = append(errs, fmt.Errorf("inspect: schema %s has a prefix without name or bytes", s.Kind))
			}
		}
	}
	if c.Kind != "" && !seen[c.Kind] {
		errs = append(errs, fmt.Errorf("inspect: unknown store kind %q", c.Kind))
	}
	if c.MemTableSize < 0 {
		errs = append(errs, fmt.Errorf("inspect: memtable size %d must not be negative", c.MemTableSize))
	}
	return errors.Join(errs...)
}
