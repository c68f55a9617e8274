package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// DefaultLimit is how many records scan and audit return when no limit is given.
const DefaultLimit = 20

// Inspector reads one Badger store, read-only. It is not safe for concurrent use.
type Inspector struct {
	cfg Config
	db  *badger.DB // the store Open opened (closed by Close); nil for View's
	// view runs a read: a new read-only transaction per call (Open), or the one snapshot of View.
	view   func(func(*badger.Txn) error) error
	tmp    string // RecoverCopy's private copy, removed at Close
	schema *Schema
	stats  []PrefixStats // per prefix of schema, then unknown
	keys   int
	bytes  int64
}

// PrefixStats counts one prefix's keys.
type PrefixStats struct {
	Name       string `json:"name"`
	Prefix     string `json:"prefix"`
	Type       string `json:"type"`
	Keys       int    `json:"keys"`
	KeyBytes   int64  `json:"key_bytes"`
	ValueBytes int64  `json:"value_bytes"`
}

// Record is one key and its decoded value.
type Record struct {
	// Key is rendered for people (big-endian numbers as decimal); KeyHex is the exact bytes.
	Key    string `json:"key"`
	KeyHex string `json:"key_hex"`
	// Prefix names the schema prefix the key belongs to ("" when none does); Type is its value type.
	Prefix string `json:"prefix,omitempty"`
	Type   string `json:"type,omitempty"`
	// Value is the value as protojson, when it decoded.
	Value json.RawMessage `json:"value,omitempty"`
	// Hex is a hex dump of the value when it did not decode (unknown prefix, or a decode error in Note).
	Hex  string `json:"hex,omitempty"`
	Note string `json:"note,omitempty"`
	// Size is the value's size in bytes.
	Size int `json:"size"`
}

// Open opens cfg.Dir read-only and tells its kind from its keys. Errors say what to do: ErrNotBadger,
// ErrCorrupt, ErrLocked (ask the running node), ErrUnclean (see Config.RecoverCopy), ErrForeign, ErrEmpty.
func Open(cfg Config) (*Inspector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db, tmp, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	in := &Inspector{cfg: cfg, db: db, view: db.View, tmp: tmp}
	if err := in.detect(); err != nil {
		_ = in.Close()
		return nil, err
	}
	return in, nil
}

// View inspects a store its caller has open (a running node's own store, for its loopback admin endpoint):
// every view fn asks for reads one read-only transaction, so they all see one consistent snapshot, and
// nothing is written. cfg.Dir only names the store in output; cfg.Kind is usually set (the caller knows
// what it opened). The Inspector is valid only during fn; the caller must keep db open until View returns.
func View(db *badger.DB, cfg Config, fn func(*Inspector) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return db.View(func(txn *badger.Txn) error {
		in := &Inspector{cfg: cfg, view: func(f func(*badger.Txn) error) error { return f(txn) }}
		if err := in.detect(); err != nil {
			return err
		}
		return fn(in)
	})
}

// Close releases the store (and removes a recovery copy). An Inspector of View has nothing to release.
func (in *Inspector) Close() error {
	if in.db == nil {
		return nil
	}
	err := in.db.Close()
	if in.tmp != "" {
		err = errors.Join(err, os.RemoveAll(in.tmp))
	}
	return err
}

// Dir is the store's directory (as configured).
func (in *Inspector) Dir() string { return in.cfg.Dir }

// Kind is the detected store kind.
func (in *Inspector) Kind() string { return in.schema.Kind }

// Recovered reports whether the inspector reads a recovered copy (Config.RecoverCopy on an unclean store).
func (in *Inspector) Recovered() bool { return in.tmp != "" }

// detect walks every key once, counting what each schema recognises, and keeps the schema that recognises
// the most keys along with its per-prefix counts.
func (in *Inspector) detect() error {
	type tally struct {
		matched, prefixes int
		stats             []PrefixStats
		unknown           PrefixStats
	}
	tallies := make([]tally, len(in.cfg.Schemas))
	for i, s := range in.cfg.Schemas {
		tallies[i].stats = make([]PrefixStats, len(s.Prefixes))
		for j := range s.Prefixes {
			p := &s.Prefixes[j]
			tallies[i].stats[j] = PrefixStats{Name: p.Name, Prefix: p.Prefix, Type: p.typeName()}
		}
		tallies[i].unknown = PrefixStats{Name: "(unknown)", Type: "bytes"}
	}
	err := in.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			kb, vb := int64(len(key)), item.ValueSize()
			in.keys++
			in.bytes += kb + vb
			for i := range in.cfg.Schemas {
				s := &in.cfg.Schemas[i]
				st := &tallies[i].unknown
				if j := s.matchIndex(key); j >= 0 {
					tallies[i].matched++
					st = &tallies[i].stats[j]
				}
				st.Keys++
				st.KeyBytes += kb
				st.ValueBytes += vb
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: read keys: %v: %w", in.cfg.Dir, err, ErrCorrupt)
	}
	if in.keys == 0 {
		return fmt.Errorf("%s is a Badger store with no keys (never written, or everything was deleted), so its kind cannot be told: %w", in.cfg.Dir, ErrEmpty)
	}
	best := -1
	for i := range tallies {
		for _, st := range tallies[i].stats {
			if st.Keys > 0 {
				tallies[i].prefixes++
			}
		}
		if in.cfg.Kind != "" {
			if in.cfg.Schemas[i].Kind == in.cfg.Kind {
				best = i
			}
			continue
		}
		if tallies[i].matched == 0 {
			continue
		}
		if best < 0 || tallies[i].matched > tallies[best].matched ||
			(tallies[i].matched == tallies[best].matched && tallies[i].prefixes > tallies[best].prefixes) {
			best = i
		}
	}
	if best < 0 {
		kinds := make([]string, 0, len(in.cfg.Schemas))
		for _, s := range in.cfg.Schemas {
			kinds = append(kinds, s.Kind)
		}
		return fmt.Errorf("%s is a Badger store, but none of its %d keys (first: %s) has a prefix of a known store (%s): %w",
			in.cfg.Dir, in.keys, in.firstKeys(3), strings.Join(kinds, ", "), ErrForeign)
	}
	if in.cfg.Kind == "" {
		for i := range tallies {
			if i != best && tallies[i].matched == tallies[best].matched && tallies[i].prefixes == tallies[best].prefixes {
				return fmt.Errorf("%s: its keys fit both %s and %s stores: %w", in.cfg.Dir, in.cfg.Schemas[best].Kind, in.cfg.Schemas[i].Kind, ErrAmbiguous)
			}
		}
	}
	in.schema = &in.cfg.Schemas[best]
	in.stats = tallies[best].stats
	if tallies[best].unknown.Keys > 0 {
		in.stats = append(in.stats, tallies[best].unknown)
	}
	return nil
}

func (in *Inspector) firstKeys(n int) string {
	var out []string
	_ = in.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < n; it.Next() {
			out = append(out, fmt.Sprintf("%q", Printable(it.Item().Key())))
		}
		return nil
	})
	return strings.Join(out, ", ")
}

// Prefixes returns key counts and sizes per prefix of the store's schema, with an "(unknown)" row for keys
// that match none.
func (in *Inspector) Prefixes() []PrefixStats { return slices.Clone(in.stats) }

// Summary is the default view.
type Summary struct {
	Dir  string `json:"dir"`
	Kind string `json:"kind"`
	Doc  string `json:"doc"`
	// Recovered is set when the store was read from a recovered copy (Config.RecoverCopy).
	Recovered bool  `json:"recovered_copy,omitempty"`
	Keys      int   `json:"keys"`
	Bytes     int64 `json:"bytes"`
	// The facts below are set by the store's schema when the store has them.
	SeqHighWaterMark *uint64  `json:"seq_high_water_mark,omitempty"`
	LeaseEpoch       *uint64  `json:"lease_epoch,omitempty"`
	SpoolDepth       *int64   `json:"spool_depth_batches,omitempty"`
	SpoolItems       *int64   `json:"spool_items,omitempty"`
	OldestEntryAge   *float64 `json:"oldest_entry_age_seconds,omitempty"`
	OwnedDevices     *int     `json:"owned_devices,omitempty"`
	// Facts are further store-specific lines, in order.
	Facts    []Fact        `json:"facts,omitempty"`
	Prefixes []PrefixStats `json:"prefixes"`
}

// Fact is one named line of a summary.
type Fact struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Add appends a fact.
func (s *Summary) Add(name string, value any) { s.Facts = append(s.Facts, Fact{name, value}) }

// Summary returns the default view.
func (in *Inspector) Summary() (*Summary, error) {
	s := &Summary{Dir: in.cfg.Dir, Kind: in.schema.Kind, Doc: in.schema.Doc, Recovered: in.Recovered(), Keys: in.keys,
		Bytes: in.bytes, Prefixes: in.Prefixes()}
	if in.schema.Summarize == nil {
		return s, nil
	}
	err := in.view(func(txn *badger.Txn) error {
		return in.schema.Summarize(&Reader{txn: txn, now: in.cfg.Now()}, s)
	})
	if err != nil {
		return nil, fmt.Errorf("summarize %s store: %w", in.schema.Kind, err)
	}
	return s, nil
}

// Get returns one key's record. key is what an operator types: a key as the views print it ("cmd/42",
// "seq/mark"), or "0x…"/"hex:…" for exact bytes.
func (in *Inspector) Get(key string) (Record, error) {
	k, err := in.ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	err = in.view(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%q (bytes 0x%x) in %s: %w", key, k, in.cfg.Dir, ErrKeyNotFound)
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		rec = in.record(k, v)
		return nil
	})
	return rec, err
}

// ParseKey turns an operator's key text into key bytes.
func (in *Inspector) ParseKey(key string) ([]byte, error) {
	for _, h := range []string{"0x", "hex:"} {
		if strings.HasPrefix(key, h) {
			b, err := hex.DecodeString(key[len(h):])
			if err != nil {
				return nil, fmt.Errorf("key %q: bad hex: %w", key, err)
			}
			return b, nil
		}
	}
	var best *Prefix
	for i := range in.schema.Prefixes {
		p := &in.schema.Prefixes[i]
		if strings.HasPrefix(key, p.Prefix) && (best == nil || len(p.Prefix) > len(best.Prefix)) {
			best = p
		}
	}
	if best == nil || best.Exact || best.ParseKey == nil {
		return []byte(key), nil
	}
	rest, err := best.ParseKey(key[len(best.Prefix):])
	if err != nil {
		return nil, fmt.Errorf("key %q (%s): %w", key, best.Name, err)
	}
	return append([]byte(best.Prefix), rest...), nil
}

// Scan returns up to limit records (DefaultLimit when limit <= 0) under prefix, in key order, and whether
// more follow. prefix is a prefix name from the schema ("audit") or the key bytes as text ("nq/n1/").
func (in *Inspector) Scan(prefix string, limit int) ([]Record, bool, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	pfx := []byte(prefix)
	for _, p := range in.schema.Prefixes {
		if p.Name == prefix {
			pfx = []byte(p.Prefix)
		}
	}
	var out []Record
	more := false
	err := in.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: min(limit+1, 100)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, in.record(it.Item().KeyCopy(nil), v))
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("scan %q: %w", prefix, err)
	}
	return out, more, nil
}

// Audit returns the last tail records of the store's audit log (DefaultLimit when tail <= 0), oldest first.
func (in *Inspector) Audit(tail int) ([]Record, error) {
	if tail <= 0 {
		tail = DefaultLimit
	}
	var p *Prefix
	for i := range in.schema.Prefixes {
		if in.schema.Prefixes[i].Audit {
			p = &in.schema.Prefixes[i]
		}
	}
	if p == nil {
		return nil, fmt.Errorf("a %s store: %w (try scan or prefixes)", in.schema.Kind, ErrNoAudit)
	}
	var out []Record
	err := in.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p.Prefix), Reverse: true, PrefetchValues: true, PrefetchSize: min(tail, 100)})
		defer it.Close()
		for it.Seek(append([]byte(p.Prefix), bytes.Repeat([]byte{0xff}, 32)...)); it.Valid() && len(out) < tail; it.Next() {
			if !p.matches(it.Item().Key()) {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, in.record(it.Item().KeyCopy(nil), v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true}

// record decodes one key/value with the schema.
func (in *Inspector) record(key, value []byte) Record {
	r := Record{Key: Printable(key), KeyHex: hex.EncodeToString(key), Size: len(value)}
	p := in.schema.match(key)
	if p == nil {
		r.Note = "no prefix of a " + in.schema.Kind + " store matches this key; the value is shown as hex"
		r.Hex = hex.Dump(value)
		return r
	}
	r.Key, r.Prefix, r.Type = p.formatKey(key), p.Name, p.typeName()
	m, err := p.decode(key, value)
	if err != nil {
		r.Note = fmt.Sprintf("value does not decode as %s (%v); shown as hex", r.Type, err)
		r.Hex = hex.Dump(value)
		return r
	}
	if m == nil {
		r.Note = "empty value (index entry)"
		return r
	}
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		r.Note = fmt.Sprintf("cannot render %s as JSON: %v", r.Type, err)
		r.Hex = hex.Dump(value)
		return r
	}
	r.Value = json.RawMessage(b)
	return r
}

// Reader gives a schema's Summarize read access to the store.
type Reader struct {
	txn *badger.Txn
	now time.Time
}

// Now is the time ages are computed against.
func (r *Reader) Now() time.Time { return r.now }

// Get returns the value at key; found is false when it is absent.
func (r *Reader) Get(key []byte) (value []byte, found bool, err error) {
	item, err := r.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// GetProto decodes the value at key into m; found is false when it is absent.
func (r *Reader) GetProto(key []byte, m proto.Message) (found bool, err error) {
	v, found, err := r.Get(key)
	if err != nil || !found {
		return found, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return true, fmt.Errorf("decode %q as %s: %w", key, proto.MessageName(m), err)
	}
	return true, nil
}

// Each calls fn with every key and value under prefix, in key order (reverse: newest first), until fn returns
// false or an error. Key and value are valid only during the call.
func (r *Reader) Each(prefix []byte, reverse bool, fn func(key, value []byte) (bool, error)) error {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	if reverse {
		it.Seek(append(append([]byte{}, prefix...), bytes.Repeat([]byte{0xff}, 32)...))
	} else {
		it.Rewind()
	}
	for ; it.Valid(); it.Next() {
		var more bool
		err := it.Item().Value(func(v []byte) error {
			var err error
			more, err = fn(it.Item().Key(), v)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Count returns the number of keys under prefix.
func (r *Reader) Count(prefix []byte) int {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}
