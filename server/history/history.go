package history

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// History stores per-miner telemetry at full resolution and in 1-minute and 1-hour rollups, keeps per-group
// rollups at ingest, and answers series and totals queries. It is safe for concurrent use: writes (Append,
// Tick, SetGroups) are serialized; queries run alongside them and see every write that has returned.
type History struct {
	cfg   Config
	db    *badger.DB
	ownDB bool
	log   *slog.Logger
	met   *metrics
	// wall is the clock Badger expires records by; only time-to-live conversion reads it.
	wall func() time.Time

	// reads counts queries reading a Badger snapshot after releasing mu; Close waits for them.
	reads sync.WaitGroup

	mu     sync.RWMutex
	closed bool
	// dirty: a write failed after the in-memory state had moved on; the next write rebuilds it from disk.
	dirty  bool
	miners map[string]*minerState
	// known holds every miner that may have records on disk: the index read at recovery plus every index
	// key written since. A miner outside it has nothing to restore, so its first sample costs no read.
	known   map[string]struct{}
	groups  *registry
	expired int64 // minute of the last expire pass
}

// minerState is one miner's open buckets and newest sample.
type minerState struct {
	r    rollup
	last sample // newest accepted sample (Live)
	// indexed is when (business ms) this process last wrote the miner's index key; 0: not yet.
	indexed int64
}

// indexRefresh is how often a reporting miner's index key (and its time to live) is rewritten.
const indexRefresh = 24 * hourMs

// Open opens (creating if needed) a history with its own Badger in cfg.Dir ("" in memory), sized small
// (badgerkv), without synced writes: a crash of the machine may lose the last seconds of history, never
// its consistency. It rebuilds every miner's open buckets before returning.
func Open(cfg Config) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	db, err := badgerkv.Open(badgerkv.Options{Dir: cfg.Dir, MemTableSize: cfg.MemTableSize, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	h, err := newHistory(db, cfg, true)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return h, nil
}

// New opens a history in a Badger the caller owns (and closes, after Close). All its keys start with "h/".
func New(db *badger.DB, cfg Config) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newHistory(db, cfg.withDefaults(), false)
}

func newHistory(db *badger.DB, cfg Config, own bool) (*History, error) {
	h := &History{cfg: cfg, db: db, ownDB: own, log: cfg.Logger.With(slog.String("component", "history")),
		met: newMetrics(cfg.Registerer), wall: time.Now, groups: newRegistry(nil)}
	if err := h.checkFormat(); err != nil {
		return nil, err
	}
	groups, err := h.loadGroups()
	if err != nil {
		return nil, err
	}
	h.groups = newRegistry(groups)
	start := time.Now()
	if err := h.recoverAll(); err != nil {
		return nil, err
	}
	h.log.Info("history opened", slog.Int("miners", len(h.miners)), slog.Int("groups", len(groups)),
		slog.Duration("recovery", time.Since(start)))
	return h, nil
}

func (h *History) checkFormat() error {
	return h.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyVersion))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set([]byte(keyVersion), []byte{formatV1})
		}
		if err != nil {
			return fmt.Errorf("read history format: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != formatV1 {
				return fmt.Errorf("%w: %v (this version reads %d)", ErrFormat, v, formatV1)
			}
			return nil
		})
	})
}

// Close stops the history; it closes the Badger only if Open opened it. Open buckets are not written: the
// next Open rebuilds them from the raw samples.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.reads.Wait()
	if h.ownDB {
		if err := h.db.Close(); err != nil {
			return fmt.Errorf("close history: %w", err)
		}
	}
	return nil
}

// DB is the Badger the history writes to (tests, the store inspector).
func (h *History) DB() *badger.DB { return h.db }

type inSample struct {
	id string
	s  sample
}

// Append stores a batch of samples with one WriteBatch: each at full resolution, the rollup buckets they
// close, and those buckets' contributions to the Fleet and to every group of their miner. Samples may come in
// any order and from many miners; per miner they are applied in time order, and one at or before the
// miner's newest sample is a duplicate. The samples are not modified. Call it with thousands of samples at a
// time (a node's batch), not one by one.
func (h *History) Append(samples []*pb.Telemetry) (AppendResult, error) {
	began := time.Now()
	var res AppendResult
	now := h.cfg.Clock.Now().UnixMilli()
	limit := now + h.cfg.MaxFutureSkew.Milliseconds()
	batch := make([]inSample, 0, len(samples))
	for _, t := range samples {
		ts := t.GetObservedAtUnixMs()
		if validID(t.GetMinerId()) != nil || ts <= 0 || ts > limit {
			res.Invalid++
			continue
		}
		batch = append(batch, inSample{id: t.GetMinerId(), s: fromTelemetry(t)})
	}
	slices.SortStableFunc(batch, func(a, b inSample) int { return cmp.Compare(a.s.ts, b.s.ts) })

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return AppendResult{}, ErrClosed
	}
	if err := h.resync(); err != nil {
		return AppendResult{}, err
	}
	w := h.newWriter(now)
	defer w.cancel()
	var closes []closedBucket
	for _, x := range batch {
		m, err := h.miner(x.id, w)
		if err != nil {
			h.dirty = true // earlier samples of the batch moved rollups that were not written
			return AppendResult{}, err
		}
		var o outcome
		closes, o = m.r.add(x.s, closes[:0])
		if o == duplicate {
			res.Duplicate++
			continue
		}
		m.last = x.s
		stored := w.raw(x.id, x.s)
		switch {
		case o == late:
			res.Late++
		case stored:
			res.Written++
		default:
			res.Expired++
		}
		for _, c := range closes {
			w.close(x.id, c)
		}
	}
	if m := floorTo(now, minuteMs); m > h.expired {
		h.expireAll(now, w)
	}
	if err := w.flush(); err != nil {
		h.dirty = true
		return AppendResult{}, fmt.Errorf("append %d samples: %w", len(batch), err)
	}
	h.met.result(res)
	h.met.append.Observe(time.Since(began).Seconds())
	h.met.miners.Set(float64(len(h.miners)))
	return res, nil
}

// Tick closes the buckets that have waited their grace (Config.MinuteCloseGrace, HourCloseGrace) for a
// sample that did not come, so silent miners' last minutes and hours reach the store and their groups, and
// forgets miners with nothing open whose newest sample is older than the raw retention. Append does the same
// at most once a minute; call Tick every minute or so so it also happens when no samples arrive.
func (h *History) Tick(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if err := h.resync(); err != nil {
		return err
	}
	ms := now.UnixMilli()
	w := h.newWriter(ms)
	defer w.cancel()
	h.expireAll(ms, w)
	if err := w.flush(); err != nil {
		h.dirty = true
		return fmt.Errorf("tick: %w", err)
	}
	h.met.miners.Set(float64(len(h.miners)))
	return nil
}

// expireAll runs the grace closes of every miner at now. Caller holds mu.
func (h *History) expireAll(now int64, w *writer) {
	h.expired = floorTo(now, minuteMs)
	mg, hg := h.cfg.MinuteCloseGrace.Milliseconds(), h.cfg.HourCloseGrace.Milliseconds()
	forget := now - h.cfg.RawRetention.Milliseconds()
	var closes []closedBucket
	for id, m := range h.miners {
		closes = m.r.expire(now, mg, hg, closes[:0])
		for _, c := range closes {
			w.close(id, c)
		}
		if m.r.idle() && m.r.lastTs < forget {
			delete(h.miners, id)
		}
	}
}

// miner returns the state of id, restoring it from disk the first time it is seen if it may have records
// there (a miner forgotten as idle, or one whose records a previous process wrote); a miner never indexed
// starts empty without a read. Caller holds mu.
func (h *History) miner(id string, w *writer) (*minerState, error) {
	m := h.miners[id]
	if m == nil {
		if _, ok := h.known[id]; ok {
			var err error
			if m, err = h.restore(w.reader(), id, w); err != nil {
				return nil, err
			}
		} else {
			m = &minerState{}
		}
		h.miners[id] = m
	}
	if m.indexed == 0 || w.now-m.indexed >= indexRefresh {
		w.index(id)
		h.known[id] = struct{}{}
		m.indexed = w.now
	}
	return m, nil
}

// resync rebuilds the in-memory state from disk after a failed write. Caller holds mu.
func (h *History) resync() error {
	if !h.dirty {
		return nil
	}
	if err := h.recoverAll(); err != nil {
		return fmt.Errorf("resync after a failed write: %w", err)
	}
	h.dirty = false
	return nil
}

// recoverAll rebuilds every indexed miner's open buckets, writes what a crash left unwritten, and runs the
// grace closes due at now. Caller holds mu (or is newHistory).
func (h *History) recoverAll() error {
	now := h.cfg.Clock.Now().UnixMilli()
	h.miners = map[string]*minerState{}
	h.known = map[string]struct{}{}
	w := h.newWriter(now)
	defer w.cancel()
	var ids []string
	err := h.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pIndex)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, string(it.Item().Key()[len(pIndex):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read miner index: %w", err)
	}
	for _, id := range ids {
		h.known[id] = struct{}{}
		m, err := h.restore(w.reader(), id, w)
		if err != nil {
			return err
		}
		// indexed stays 0: the miner's next sample rewrites its index key, so the key's time to live keeps
		// covering its records across restarts.
		if m.r.lastTs > 0 {
			h.miners[id] = m
		}
	}
	healed := w.closedMin + w.closedHour
	h.expireAll(now, w)
	if err := w.flush(); err != nil {
		return fmt.Errorf("recover history: %w", err)
	}
	if healed > 0 {
		h.log.Warn("history: rewrote rollup buckets a crash left unwritten", slog.Int("buckets", healed))
	}
	return nil
}

// restore reads one miner's newest stored buckets and the records after them, and rebuilds its rollup;
// buckets a crash left unwritten go to w.
func (h *History) restore(txn *badger.Txn, id string, w *writer) (*minerState, error) {
	var in restored
	var err error
	if in.lastHour, err = lastBucket(txn, pHour, id); err != nil {
		return nil, err
	}
	if in.lastMinute, err = lastBucket(txn, pMinute, id); err != nil {
		return nil, err
	}
	var from int64
	if in.lastHour != nil {
		from = in.lastHour.start + hourMs
	}
	err = scanSeries(txn, pMinute, id, from, maxTime, func(ts int64, v []byte) error {
		a, err := decodeBucket(ts, v)
		in.minutes = append(in.minutes, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	from = 0
	if in.lastMinute != nil {
		from = in.lastMinute.start + minuteMs
	}
	err = scanSeries(txn, pRaw, id, from, maxTime, func(ts int64, v []byte) error {
		s, err := decodeSample(ts, v)
		in.raw = append(in.raw, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	r, closes := recoverRollup(in)
	for _, c := range closes {
		w.close(id, c)
	}
	m := &minerState{r: r}
	switch {
	case len(in.raw) > 0:
		m.last = in.raw[len(in.raw)-1]
	case in.lastMinute != nil:
		a := in.lastMinute
		m.last = sample{ts: a.last, hashrate: float32(a.hMean), power: float32(a.pMean), temp: a.temp, fan: a.fan, state: a.state}
	}
	return m, nil
}

// SetGroups replaces the group registry: group name → member miner ids (a site, a node, an org; names are
// the caller's, e.g. "site/austin", "node/n1"). A miner may be in several groups. Rollup buckets a miner
// closes from now on count towards the groups it is in at that time; what was written before stays (a miner
// moved between nodes keeps its past in the old node's history). The registry is stored, so it survives a
// restart; call SetGroups again whenever membership changes.
func (h *History) SetGroups(groups map[string][]string) error {
	for name, members := range groups {
		if err := validID(name); err != nil {
			return fmt.Errorf("set groups: group: %w", err)
		}
		for _, m := range members {
			if err := validID(m); err != nil {
				return fmt.Errorf("set groups: member of %q: %w", name, err)
			}
		}
	}
	reg := newRegistry(groups)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	wb := h.db.NewWriteBatch()
	defer wb.Cancel()
	for _, old := range h.groups.names[1:] {
		if _, ok := reg.byName[old]; !ok {
			if err := wb.Delete([]byte(pGroups + old)); err != nil {
				return fmt.Errorf("set groups: %w", err)
			}
		}
	}
	for i, name := range reg.names[1:] {
		if err := wb.Set([]byte(pGroups+name), appendMembers(nil, reg.members[i+1])); err != nil {
			return fmt.Errorf("set groups: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("set groups: %w", err)
	}
	h.groups = reg
	return nil
}

func (h *History) loadGroups() (map[string][]string, error) {
	groups := map[string][]string{}
	err := h.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pGroups), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(pGroups):])
			err := it.Item().Value(func(v []byte) error {
				m, err := decodeMembers(v)
				groups[name] = m
				return err
			})
			if err != nil {
				return fmt.Errorf("group %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load groups: %w", err)
	}
	return groups, nil
}

// registry is the group membership: index 0 is the Fleet (every miner), the others are SetGroups' groups.
type registry struct {
	names   []string
	byName  map[string]int32
	members [][]string         // by index; the Fleet's is nil (all miners)
	of      map[string][]int32 // miner → its group indices, Fleet excluded
}

func newRegistry(groups map[string][]string) *registry {
	r := &registry{names: []string{Fleet}, byName: map[string]int32{Fleet: 0}, members: [][]string{nil},
		of: map[string][]int32{}}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		i := int32(len(r.names))
		members := slices.Compact(slices.Sorted(slices.Values(groups[n])))
		r.names = append(r.names, n)
		r.byName[n] = i
		r.members = append(r.members, members)
		for _, m := range members {
			r.of[m] = append(r.of[m], i)
		}
	}
	return r
}
