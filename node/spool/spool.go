package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/protobuf/proto"
)

// Protected reports whether an event is one the spool never drops: the gate's command audit records and the
// local command log. Events carrying an audit record or a local command count whatever their kind says.
func Protected(e *pb.Event) bool {
	switch e.GetKind() {
	case pb.EventKind_EVENT_KIND_COMMAND_AUDIT, pb.EventKind_EVENT_KIND_LOCAL_COMMAND:
		return true
	}
	return e.GetAudit() != nil || e.GetLocalCommand() != nil
}

// entry is one batch in the index.
type entry struct {
	seq uint64
	meta
	size int64 // data key + value + meta key + meta value
}

// lane is the index of one kind, ascending by seq.
type lane struct {
	entries []entry
	items   int
	bytes   int64
	// lastSeq is the highest seq appended (or found at Open): appends must go above it.
	lastSeq uint64
	// lastNext is the highest seq Next handed out in this process. Batches at or below it may be on the wire,
	// so they are never downsampled or dropped: only an ack removes them.
	lastNext uint64
	// noGainUpTo: raw telemetry up to this seq did not compress (one sample per miner-minute already), so
	// downsampling starts after it.
	noGainUpTo uint64
}

// search returns the index of the first entry with seq >= seq.
func (l *lane) search(seq uint64) int {
	return sort.Search(len(l.entries), func(i int) bool { return l.entries[i].seq >= seq })
}

func (l *lane) find(seq uint64) (int, bool) {
	i := l.search(seq)
	return i, i < len(l.entries) && l.entries[i].seq == seq
}

func (l *lane) add(e entry) {
	i := l.search(e.seq)
	if i == len(l.entries) {
		l.entries = append(l.entries, e)
	} else {
		l.entries = append(l.entries, entry{})
		copy(l.entries[i+1:], l.entries[i:])
		l.entries[i] = e
	}
	l.items += e.items
	l.bytes += e.size
}

func (l *lane) removeAt(i int) entry {
	e := l.entries[i]
	if i == 0 {
		l.entries[0] = entry{}
		l.entries = l.entries[1:]
	} else {
		l.entries = append(l.entries[:i], l.entries[i+1:]...)
	}
	l.items -= e.items
	l.bytes -= e.size
	return e
}

// Spool is the Badger-backed telemetry.Outbox: the batcher's batches from creation until the cloud acks them,
// surviving restarts, bounded by Config.MaxBytes. Safe for concurrent use.
type Spool struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	db      *badger.DB
	closed  bool
	lanes   [numKinds]lane
	pending [][]byte // keys of acked batches not yet deleted on disk
	dropped [numKinds][]uint64
	cache   batchCache
	prog    progress
	// views is held (read) by Inspect for the length of its snapshot and (write) by Close, so a live view
	// never reads a closed Badger.
	views sync.RWMutex
}

var _ telemetry.Outbox = (*Spool)(nil)

// Open opens (creating) the spool in cfg.Dir and indexes what it holds: the batches left by the last run come
// back in seq order, minus a downsample step that did not commit.
func Open(cfg Config) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := badgerkv.Open(badgerkv.Options{Dir: cfg.Dir, MemTableSize: cfg.MemTableSize, ValueLogFileSize: 16 << 20,
		SyncWrites: true, Logger: cfg.Logger, Tune: tuneBadger, Registerer: cfg.Registerer, Name: "spool"})
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{cfg: cfg, clk: cfg.Clock, log: cfg.Logger.With(slog.String("component", "spool")), m: newMetrics(cfg.Registerer),
		db: db, cache: newBatchCache(cfg.CacheBytes)}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open spool %s: %w", cfg.Dir, err)
	}
	s.prog.reset(s.clk.Now())
	s.m.age.set(s.oldestAge)
	s.gauges()
	if n := s.lanes[0].items + s.lanes[1].items; n > 0 {
		s.log.Info("spool opened with a backlog", slog.Int("telemetry_batches", len(s.lanes[telemetry.KindTelemetry].entries)),
			slog.Int("samples", s.lanes[telemetry.KindTelemetry].items), slog.Int("event_batches", len(s.lanes[telemetry.KindEvents].entries)),
			slog.Int("events", s.lanes[telemetry.KindEvents].items), slog.Int64("bytes", s.bytes()))
	}
	return s, nil
}

// load writes the identity record on first open, rolls back an uncommitted downsample step and builds the
// index from the meta records.
func (s *Spool) load() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get([]byte(keyInfo)); errors.Is(err, badger.ErrKeyNotFound) {
			if err := txn.Set([]byte(keyInfo), encodeInfo(s.clk.Now().UnixMilli())); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		item, err := txn.Get([]byte(keyIntent))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		in, err := decodeIntent(v)
		if err != nil {
			return err
		}
		s.log.Warn("rolling back a downsample step interrupted by a crash; its raw batches are kept", slog.Int("aggregated_batches", len(in.targets)))
		for _, seq := range in.targets {
			if err := txn.Delete(dataKey(in.kind, seq, variantAggregated)); err != nil {
				return err
			}
		}
		return txn.Delete([]byte(keyIntent))
	})
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixMeta), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			kind, seq, err := parseMetaKey(item.Key())
			if err != nil {
				return err
			}
			var m meta
			if err := item.Value(func(v []byte) error {
				var err error
				m, err = decodeMeta(v)
				return err
			}); err != nil {
				return fmt.Errorf("meta %s %d: %w", kind, seq, err)
			}
			l := &s.lanes[kind]
			l.add(entry{seq: seq, meta: m, size: entrySize(kind, m)})
			l.lastSeq = max(l.lastSeq, seq)
		}
		return nil
	})
}

// tuneBadger fits Badger to a queue of large values written once and deleted soon after. Batches stay
// inline in the LSM tree (under Badger's 1 MB value threshold), so compaction reclaims acked batches without
// value-log GC, and the value log's preallocated files need not be 64 MiB. A queue writes steadily, so level 0
// may hold more tables before writes stall (Badger's own 5/15 rather than the small-node 2/4), and a larger
// base level keeps the tree shallow: measured, this takes a 500-sample append from ≈9 ms to ≈3 ms (one fsync)
// on the development machine. It costs disk, not memory.
func tuneBadger(o badger.Options) badger.Options {
	return o.WithNumLevelZeroTables(5).WithNumLevelZeroTablesStall(15).WithBaseLevelSize(64 << 20).WithBaseTableSize(8 << 20)
}

func entrySize(k telemetry.Kind, m meta) int64 {
	return int64(len(dataPrefix(k))+9+m.valueLen+len(prefixMeta)+9) + int64(len(encodeMeta(m)))
}

func (s *Spool) bytes() int64 { return s.lanes[0].bytes + s.lanes[1].bytes }

func checkKind(k telemetry.Kind) error {
	if k != telemetry.KindTelemetry && k != telemetry.KindEvents {
		return fmt.Errorf("kind %d: %w", k, ErrBadBatch)
	}
	return nil
}

// encodeBatch marshals b and fills the meta fields that depend on its content.
func encodeBatch(b telemetry.Batch) ([]byte, meta, error) {
	m := meta{variant: variantRaw}
	if err := checkKind(b.Kind); err != nil {
		return nil, m, err
	}
	var msg proto.Message
	if b.Kind == telemetry.KindTelemetry {
		if b.Telemetry == nil || b.Events != nil || b.Telemetry.GetBatchSeq() != b.Seq {
			return nil, m, fmt.Errorf("telemetry batch %d (payload seq %d, events set %v): %w", b.Seq, b.Telemetry.GetBatchSeq(), b.Events != nil, ErrBadBatch)
		}
		msg, m.items, m.maxObs = b.Telemetry, len(b.Telemetry.GetSamples()), newestObserved(b.Telemetry.GetSamples())
	} else {
		if b.Events == nil || b.Telemetry != nil || b.Events.GetBatchSeq() != b.Seq {
			return nil, m, fmt.Errorf("event batch %d (payload seq %d, telemetry set %v): %w", b.Seq, b.Events.GetBatchSeq(), b.Telemetry != nil, ErrBadBatch)
		}
		msg, m.items = b.Events, len(b.Events.GetEvents())
		for _, e := range b.Events.GetEvents() {
			if Protected(e) {
				m.protected++
			}
		}
	}
	v, err := proto.Marshal(msg)
	if err != nil {
		return nil, m, fmt.Errorf("encode %s batch %d: %w", b.Kind, b.Seq, err)
	}
	m.valueLen = len(v)
	return v, m, nil
}

func newestObserved(samples []*pb.Telemetry) int64 {
	n := int64(math.MinInt64)
	for _, s := range samples {
		n = max(n, s.GetObservedAtUnixMs())
	}
	if n == math.MinInt64 {
		return 0
	}
	return n
}

// Append implements telemetry.Outbox. The batch is on disk (fsynced) when Append returns. When the spool would
// go over MaxBytes, older telemetry is downsampled to per-miner minute aggregates, then the oldest telemetry
// is dropped (those seqs are returned for a telemetry batch); an event batch may also drop the oldest events
// that are not command audit or local command events. A telemetry batch that still does not fit is refused
// with ErrFull; an event batch is always kept.
func (s *Spool) Append(b telemetry.Batch) ([]uint64, error) {
	value, m, err := encodeBatch(b)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	l := &s.lanes[b.Kind]
	if b.Seq <= l.lastSeq {
		return nil, fmt.Errorf("append %s batch %d after %d: %w", b.Kind, b.Seq, l.lastSeq, telemetry.ErrSeqOrder)
	}
	m.at = s.clk.Now().UnixMilli()
	dk, mk, mv := dataKey(b.Kind, b.Seq, variantRaw), metaKey(b.Kind, b.Seq), encodeMeta(m)
	size := int64(len(dk) + len(value) + len(mk) + len(mv))
	if limit := s.cfg.maxTxnBytes() / 2; size > limit {
		return nil, fmt.Errorf("%s batch %d is %d bytes, above the %d one spool write may hold (raise MemTableSize or lower the batch size): %w",
			b.Kind, b.Seq, size, limit, ErrBadBatch)
	}
	s.dropped[0], s.dropped[1] = s.dropped[0][:0], s.dropped[1][:0]
	if b.Kind == telemetry.KindTelemetry && s.bytes()+size > s.cfg.MaxBytes {
		s.shed(min(s.cfg.shedTo(), s.cfg.MaxBytes-size), false)
		if s.bytes()+size > s.cfg.MaxBytes {
			l.lastSeq = b.Seq
			s.m.droppedSamples.WithLabelValues(ReasonRefused).Add(float64(m.items))
			s.gauges()
			return nil, fmt.Errorf("telemetry batch %d (%d samples, %d bytes; %d of %d held): %w", b.Seq, m.items, size, s.bytes(), s.cfg.MaxBytes, ErrFull)
		}
	}
	if len(s.pending) > 512 {
		if err := s.flushPending(); err != nil {
			return nil, err
		}
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, k := range s.pending {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if err := txn.Set(dk, value); err != nil {
			return err
		}
		return txn.Set(mk, mv)
	})
	if err != nil {
		return nil, fmt.Errorf("append %s batch %d: %w", b.Kind, b.Seq, err)
	}
	s.pending = s.pending[:0]
	if s.empty() {
		s.prog.reset(s.clk.Now())
	}
	l.add(entry{seq: b.Seq, meta: m, size: size})
	l.lastSeq = b.Seq
	if b.Kind == telemetry.KindTelemetry {
		b.Encoded = value
	}
	s.cache.put(b, int64(len(value)))
	if b.Kind == telemetry.KindEvents && s.bytes() > s.cfg.MaxBytes {
		s.shed(s.cfg.shedTo(), true)
	}
	s.gauges()
	return append([]uint64(nil), s.dropped[b.Kind]...), nil
}

func (s *Spool) empty() bool { return len(s.lanes[0].entries) == 0 && len(s.lanes[1].entries) == 0 }

// Next implements telemetry.Outbox. A batch handed out is never downsampled or dropped afterwards (it may be
// on the wire); only Ack removes it.
func (s *Spool) Next(kind telemetry.Kind, after uint64) (telemetry.Batch, bool, error) {
	if err := checkKind(kind); err != nil {
		return telemetry.Batch{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return telemetry.Batch{}, false, ErrClosed
	}
	l := &s.lanes[kind]
	for {
		i := l.search(after + 1)
		if i == len(l.entries) {
			return telemetry.Batch{}, false, nil
		}
		e := l.entries[i]
		b, err := s.read(nil, kind, e)
		if errors.Is(err, ErrCorrupt) {
			// A batch that cannot be read back would stop the stream for good: set it aside, count it, go on.
			s.log.Error("spool batch unreadable; dropped", slog.String("kind", kind.String()), slog.Uint64("seq", e.seq), slog.Any("error", err))
			if derr := s.deleteEntries(kind, []entry{e}); derr != nil {
				return telemetry.Batch{}, false, derr
			}
			s.countDrop(kind, ReasonCorrupt, e.items)
			s.gauges()
			continue
		}
		if err != nil {
			return telemetry.Batch{}, false, err
		}
		l.lastNext = max(l.lastNext, e.seq)
		return b, true, nil
	}
}

// read returns the batch of entry e (from the cache when it is there). txn may be nil.
func (s *Spool) read(txn *badger.Txn, kind telemetry.Kind, e entry) (telemetry.Batch, error) {
	if b, ok := s.cache.get(kind, e.seq, e.variant); ok {
		return b, nil
	}
	key := dataKey(kind, e.seq, e.variant)
	var v []byte
	get := func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%s batch %d: data missing: %w", kind, e.seq, ErrCorrupt)
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	}
	var err error
	if txn != nil {
		err = get(txn)
	} else {
		err = s.db.View(get)
	}
	if err != nil {
		return telemetry.Batch{}, fmt.Errorf("read %s batch %d: %w", kind, e.seq, err)
	}
	b := telemetry.Batch{Kind: kind, Seq: e.seq}
	var msg proto.Message
	if kind == telemetry.KindTelemetry {
		b.Telemetry = &pb.TelemetryBatch{}
		msg = b.Telemetry
	} else {
		b.Events = &pb.EventBatch{}
		msg = b.Events
	}
	if err := proto.Unmarshal(v, msg); err != nil {
		return telemetry.Batch{}, fmt.Errorf("decode %s batch %d: %v: %w", kind, e.seq, err, ErrCorrupt)
	}
	if kind == telemetry.KindTelemetry {
		b.Encoded = v // a copy of the stored value: the same bytes the batch re-encodes to
	}
	return b, nil
}

// Ack implements telemetry.Outbox. The batch leaves the index at once; its keys are deleted on disk with the
// next Append, every AckFlushEvery acks, or at Close (a crash before that sends it again, and the cloud drops
// the duplicate by batch_seq).
func (s *Spool) Ack(kind telemetry.Kind, seq uint64) (bool, error) {
	if err := checkKind(kind); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	l := &s.lanes[kind]
	i, ok := l.find(seq)
	if !ok {
		return false, nil
	}
	e := l.removeAt(i)
	s.pending = append(s.pending, dataKey(kind, seq, e.variant), metaKey(kind, seq))
	s.cache.remove(kind, seq)
	now := s.clk.Now()
	s.prog.ack(e.items, now)
	var err error
	if len(s.pending) >= 2*s.cfg.AckFlushEvery {
		err = s.flushPending()
	}
	s.gauges()
	s.logProgress(now)
	return true, err
}

// flushPending deletes acked batches on disk.
func (s *Spool) flushPending() error {
	if len(s.pending) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range s.pending {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("delete acked batches: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete acked batches: %w", err)
	}
	s.pending = s.pending[:0]
	return nil
}

// Len implements telemetry.Outbox.
func (s *Spool) Len(kind telemetry.Kind) (batches, items int) {
	if checkKind(kind) != nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lanes[kind].entries), s.lanes[kind].items
}

// Close deletes what was acked and closes the store. Safe to call more than once.
func (s *Spool) Close() error {
	s.views.Lock() // before mu, as Inspect takes them
	defer s.views.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.m.age.set(nil)
	err := s.flushPending()
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close spool: %w", cerr))
	}
	return err
}

// KindStats describes one kind's backlog.
type KindStats struct {
	Batches, Items int
	// Aggregated is how many telemetry batches hold minute aggregates; Protected how many events are command
	// audit or local command events.
	Aggregated, Protected int
	Bytes                 int64
}

// Stats is the spool's state for UIs, the admin endpoint and tests.
type Stats struct {
	Telemetry, Events KindStats
	// Bytes held, against MaxBytes.
	Bytes, MaxBytes int64
	// Oldest is when the oldest batch held entered the spool; zero when empty.
	Oldest time.Time
}

// Stats returns the spool's state.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Bytes: s.bytes(), MaxBytes: s.cfg.MaxBytes}
	for k, dst := range []*KindStats{&st.Telemetry, &st.Events} {
		l := &s.lanes[k]
		dst.Batches, dst.Items, dst.Bytes = len(l.entries), l.items, l.bytes
		for _, e := range l.entries {
			if e.variant == variantAggregated {
				dst.Aggregated++
			}
			dst.Protected += e.protected
		}
	}
	if at, ok := s.oldestLocked(); ok {
		st.Oldest = time.UnixMilli(at)
	}
	return st
}

func (s *Spool) oldestLocked() (int64, bool) {
	at, ok := int64(math.MaxInt64), false
	for k := range s.lanes {
		for _, e := range s.lanes[k].entries {
			// Entries are in seq order and a downsample step stamps its aggregates with the oldest time it
			// folded, so the first few entries hold the minimum; scan them all anyway, it is cheap.
			if e.at < at {
				at, ok = e.at, true
			}
		}
	}
	return at, ok
}

func (s *Spool) oldestAge() (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.oldestLocked()
	if !ok {
		return 0, false
	}
	return max(0, s.clk.Since(time.UnixMilli(at)).Seconds()), true
}

func (s *Spool) gauges() {
	for k := range s.lanes {
		kind := telemetry.Kind(k).String()
		s.m.depth.WithLabelValues(kind).Set(float64(len(s.lanes[k].entries)))
		s.m.items.WithLabelValues(kind).Set(float64(s.lanes[k].items))
	}
	s.m.bytes.Set(float64(s.bytes()))
}

func (s *Spool) countDrop(kind telemetry.Kind, reason string, n int) {
	if n <= 0 {
		return
	}
	if kind == telemetry.KindTelemetry {
		s.m.droppedSamples.WithLabelValues(reason).Add(float64(n))
	} else {
		s.m.droppedEvents.WithLabelValues(reason).Add(float64(n))
	}
}

// deleteEntries removes batches (data and meta together, one transaction per group) from disk and index.
func (s *Spool) deleteEntries(kind telemetry.Kind, es []entry) error {
	const group = 1000
	for len(es) > 0 {
		n := min(group, len(es))
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, e := range es[:n] {
				if err := txn.Delete(dataKey(kind, e.seq, e.variant)); err != nil {
					return err
				}
				if err := txn.Delete(metaKey(kind, e.seq)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete %d %s batches: %w", n, kind, err)
		}
		l := &s.lanes[kind]
		for _, e := range es[:n] {
			if i, ok := l.find(e.seq); ok {
				l.removeAt(i)
			}
			s.cache.remove(kind, e.seq)
		}
		es = es[n:]
	}
	return nil
}
