package history

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxTime bounds open-ended scans.
const maxTime = math.MaxInt64

// writer collects one write (an Append, a Tick, a recovery) into a WriteBatch: each raw sample before the
// miner buckets it closes, and the group buckets they change last, so a crash part-way loses a group
// contribution rather than writing one twice (recovery re-closes a miner bucket only when the bucket itself
// is missing, and then its group contribution is missing too).
type writer struct {
	h       *History
	wb      *badger.WriteBatch
	now     int64 // business ms
	wallSec int64 // wall clock, s: Badger expires by it
	arena   []byte
	deltas  map[gkey]*gagg
	txn     *badger.Txn // read snapshot, opened on first need
	err     error

	closedMin, closedHour int
}

type gkey struct {
	res   Resolution
	group int32
	start int64
}

func (h *History) newWriter(now int64) *writer {
	return &writer{h: h, wb: h.db.NewWriteBatch(), now: now, wallSec: h.wall().Unix(), deltas: map[gkey]*gagg{}}
}

func (w *writer) cancel() {
	w.wb.Cancel()
	if w.txn != nil {
		w.txn.Discard()
		w.txn = nil
	}
}

// reader is a read snapshot of what earlier writes stored.
func (w *writer) reader() *badger.Txn {
	if w.txn == nil {
		w.txn = w.h.db.NewTransaction(false)
	}
	return w.txn
}

// buf returns an empty slice with capacity n carved from the arena: the WriteBatch holds keys and values by
// reference until it is flushed, so they are never reused.
func (w *writer) buf(n int) []byte {
	if cap(w.arena)-len(w.arena) < n {
		w.arena = make([]byte, 0, max(64<<10, n))
	}
	l := len(w.arena)
	w.arena = w.arena[:l+n]
	return w.arena[l : l : l+n]
}

// expiresAt converts a record's end of retention, ts + ret in business time, to Badger's wall-clock expiry
// in seconds: now on the wall clock plus the time the record has left. false: already past retention.
func (w *writer) expiresAt(ts int64, ret time.Duration) (uint64, bool) {
	left := ts + ret.Milliseconds() - w.now
	if left <= 0 {
		return 0, false
	}
	return uint64(w.wallSec + (left+999)/1000), true
}

func (w *writer) set(k, v []byte, expires uint64) {
	if w.err != nil {
		return
	}
	e := badger.NewEntry(k, v)
	e.ExpiresAt = expires
	if err := w.wb.SetEntry(e); err != nil {
		w.err = err
	}
}

// raw writes one sample at full resolution; false when it is already past the raw retention.
func (w *writer) raw(id string, s sample) bool {
	exp, ok := w.expiresAt(s.ts, w.h.cfg.RawRetention)
	if !ok {
		return false
	}
	k := appendKey(w.buf(len(pRaw)+len(id)+9), pRaw, id, s.ts)
	w.set(k, appendSample(w.buf(sampleLen), s), exp)
	return true
}

// index records that id has history (recovery and first sight read the index), for as long as its hours
// are kept: the key is rewritten every indexRefresh while the miner reports, so it lives HourRetention plus
// that period, past the newest hour written before the next rewrite.
func (w *writer) index(id string) {
	exp, _ := w.expiresAt(w.now, w.h.cfg.HourRetention+indexRefresh*time.Millisecond)
	k := append(w.buf(len(pIndex)+len(id)), pIndex...)
	w.set(append(k, id...), nil, exp)
}

// close writes a closed miner bucket and adds it to the Fleet's and the miner's groups' buckets.
func (w *writer) close(id string, c closedBucket) {
	if c.res == Minute {
		w.closedMin++
	} else {
		w.closedHour++
	}
	w.h.met.closed.WithLabelValues(c.res.String()).Inc()
	exp, ok := w.expiresAt(c.agg.start, w.h.cfg.retention(c.res))
	if !ok {
		return
	}
	p := minerPrefix(c.res)
	k := appendKey(w.buf(len(p)+len(id)+9), p, id, c.agg.start)
	w.set(k, appendBucket(w.buf(bucketLen), c.agg), exp)
	w.contribute(0, c)
	for _, g := range w.h.groups.of[id] {
		w.contribute(g, c)
	}
}

func (w *writer) contribute(group int32, c closedBucket) {
	k := gkey{c.res, group, c.agg.start}
	d := w.deltas[k]
	if d == nil {
		g := newGagg()
		d = &g
		w.deltas[k] = d
	}
	d.add(c.agg)
}

// flush merges the group contributions into the stored group buckets (read-modify-write: History is the
// only writer) and commits the batch.
func (w *writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.deltas) > 0 {
		// A fresh snapshot: it must see the group buckets of every earlier write.
		txn := w.h.db.NewTransaction(false)
		defer txn.Discard()
		for k, d := range w.deltas {
			exp, ok := w.expiresAt(k.start, w.h.cfg.retention(k.res))
			if !ok {
				continue
			}
			p := groupPrefix(k.res)
			name := w.h.groups.names[k.group]
			key := appendKey(w.buf(len(p)+len(name)+9), p, name, k.start)
			g := *d
			item, err := txn.Get(key)
			switch {
			case err == nil:
				err = item.Value(func(v []byte) error {
					old, err := decodeGroupBucket(v)
					if err != nil {
						return err
					}
					old.merge(g)
					g = old
					return nil
				})
				if err != nil {
					return fmt.Errorf("group %q bucket %d: %w", name, k.start, err)
				}
			case !errors.Is(err, badger.ErrKeyNotFound):
				return fmt.Errorf("group %q bucket %d: %w", name, k.start, err)
			}
			w.set(key, appendGroupBucket(nil, g), exp)
		}
	}
	if w.err != nil {
		return w.err
	}
	return w.wb.Flush()
}
