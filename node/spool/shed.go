package spool

import (
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/protobuf/proto"
)

// shed brings the spool down to target bytes, oldest data first and in this order:
//
//  1. downsample: fold the oldest raw telemetry into per-miner minute aggregates (downsampleStep);
//  2. drop the oldest telemetry batches (raw or aggregated);
//  3. only when events is set (an event batch is being appended): drop the oldest events that are not
//     command audit or local command events.
//
// Batches Next has handed out are never touched (they may be on the wire). Protected events are never dropped,
// so the spool can stay above target. A failure is logged and ends shedding; the caller then decides by size.
func (s *Spool) shed(target int64, events bool) {
	// Every round frees bytes or moves the incompressible mark on; the bound is a guard, never reached in
	// practice (a round handles at least one batch).
	for round := 0; s.bytes() > target && round < 1_000_000; round++ {
		ok, err := s.downsampleStep()
		if err == nil && !ok {
			ok, err = s.dropOldestTelemetry(target)
		}
		if err == nil && !ok && events {
			ok, err = s.stripOldestEvents(target)
		}
		if err != nil {
			s.log.Error("spool: shedding failed", slog.Any("error", err))
			return
		}
		if !ok {
			return
		}
	}
}

// planRegion chooses the raw telemetry batches one downsample step folds. cands are consecutive raw batches,
// oldest first. A batch is a boundary when its newest sample is in a later window than every batch before it:
// samples of a miner arrive in time order, so the windows before that one are complete (late samples aside).
// The region runs from the first candidate to the first boundary reached after stepBytes, or to the last
// boundary when the candidates run out first; end is the boundary's index and cut its first new window: the
// boundary's samples at or after cut stay raw. ok is false without any boundary (all candidates are in the
// newest, still open window).
func planRegion(cands []entry, stepBytes, windowMs int64, maxBatches int) (end int, cut int64, ok bool) {
	var consumed int64
	newest := int64(math.MinInt64)
	end = -1
	for j, e := range cands {
		if j > maxBatches {
			break
		}
		b := bucketOf(e.maxObs, windowMs)
		if j > 0 && b > newest {
			end, cut = j, newest+1
			if consumed >= stepBytes {
				return end, cut, true
			}
		}
		newest = max(newest, b)
		consumed += e.size
	}
	return end, cut, end > 0
}

// testHookDownsample, when set, is called at the crash-relevant points of a downsample step: "aggregates" (written,
// not committed) and "committed". Tests take crash images of the directory there.
var testHookDownsample func(point string)

func hookDownsample(point string) {
	if testHookDownsample != nil {
		testHookDownsample(point)
	}
}

// maxRegionBatches bounds a step so its commit (two deletes per folded batch, plus the boundary's rewrite)
// fits one transaction.
func (s *Spool) maxRegionBatches() int { return int(s.cfg.maxTxnBytes() / 2 / 64) }

// downsampleStep folds one region of the oldest raw telemetry (see planRegion) into per-miner minute
// aggregates. The aggregates take the region's last seqs, so they stay in seq order with everything around
// them and a batch the cloud may already have applied is never reused for data it has not seen.
//
// Crash safety: the intent (which aggregated keys are being written) is committed first, then the aggregates
// under their own 'a' keys beside the raw ones, then one transaction deletes the raw batches, writes the metas
// that make the aggregates live, rewrites the boundary batch and deletes the intent. A crash before that
// commit leaves the raw batches live and Open deletes the aggregates the intent names; after it, the step is
// whole. Either way no sample is lost or duplicated.
//
// It reports whether it changed anything (including marking an incompressible region, so the next call
// moves on).
func (s *Spool) downsampleStep() (bool, error) {
	const k = telemetry.KindTelemetry
	l := &s.lanes[k]
	start := l.search(max(l.lastNext, l.noGainUpTo) + 1)
	for start < len(l.entries) && l.entries[start].variant != variantRaw {
		start++ // aggregates of earlier steps
	}
	end := start
	for end < len(l.entries) && l.entries[end].variant == variantRaw {
		end++
	}
	windowMs := s.cfg.AggregateWindow.Milliseconds()
	j, cut, ok := planRegion(l.entries[start:end], s.cfg.DownsampleStep, windowMs, s.maxRegionBatches())
	if !ok {
		return false, nil
	}
	folded := slices.Clone(l.entries[start : start+j])
	boundary := l.entries[start+j]

	agg := newAggregator(s.cfg.AggregateWindow)
	var rest []*pb.Telemetry
	var node string
	nFolded, perBatch := 0, 1
	err := s.db.View(func(txn *badger.Txn) error {
		for i, e := range append(folded, boundary) {
			b, err := s.read(txn, k, e)
			if err != nil {
				return err
			}
			node = b.Telemetry.GetNodeId()
			samples := b.Telemetry.GetSamples()
			perBatch = max(perBatch, len(samples))
			for _, smp := range samples {
				if i == len(folded) && bucketOf(smp.GetObservedAtUnixMs(), windowMs) >= cut {
					rest = append(rest, smp)
					continue
				}
				agg.add(smp)
				nFolded++
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("downsample: %w", err)
	}
	out := agg.result()
	nOut := (len(out) + perBatch - 1) / perBatch
	if len(out) >= nFolded || nOut > len(folded) {
		l.noGainUpTo = folded[len(folded)-1].seq
		return true, nil
	}

	oldest := int64(math.MaxInt64)
	for _, e := range folded {
		oldest = min(oldest, e.at)
	}
	type write struct {
		e     entry
		value []byte
	}
	outs := make([]write, nOut)
	targets := make([]uint64, nOut)
	for i := range nOut {
		seq := folded[len(folded)-nOut+i].seq
		chunk := out[i*perBatch : min(len(out), (i+1)*perBatch)]
		v, err := proto.Marshal(&pb.TelemetryBatch{NodeId: node, BatchSeq: seq, Samples: chunk})
		if err != nil {
			return false, fmt.Errorf("downsample: encode aggregates: %w", err)
		}
		m := meta{variant: variantAggregated, items: len(chunk), valueLen: len(v), at: oldest, maxObs: newestObserved(chunk)}
		outs[i] = write{entry{seq: seq, meta: m, size: entrySize(k, m)}, v}
		targets[i] = seq
	}
	var restW *write
	if len(rest) < boundary.items {
		v, err := proto.Marshal(&pb.TelemetryBatch{NodeId: node, BatchSeq: boundary.seq, Samples: rest})
		if err != nil {
			return false, fmt.Errorf("downsample: encode boundary batch: %w", err)
		}
		m := meta{variant: variantRaw, items: len(rest), valueLen: len(v), at: boundary.at, maxObs: newestObserved(rest)}
		restW = &write{entry{seq: boundary.seq, meta: m, size: entrySize(k, m)}, v}
	}

	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyIntent), encodeIntent(intent{kind: k, targets: targets}))
	}); err != nil {
		return false, fmt.Errorf("downsample: record intent: %w", err)
	}
	rollback := func(cause error) (bool, error) {
		rerr := s.db.Update(func(txn *badger.Txn) error {
			for _, t := range targets {
				if err := txn.Delete(dataKey(k, t, variantAggregated)); err != nil {
					return err
				}
			}
			return txn.Delete([]byte(keyIntent))
		})
		if rerr != nil {
			s.log.Error("spool: downsample rollback failed; the next Open completes it", slog.Any("error", rerr))
		}
		return false, fmt.Errorf("downsample: %w", cause)
	}
	wb := s.db.NewWriteBatch()
	for _, o := range outs {
		if err := wb.Set(dataKey(k, o.e.seq, variantAggregated), o.value); err != nil {
			wb.Cancel()
			return rollback(err)
		}
	}
	if err := wb.Flush(); err != nil {
		return rollback(err)
	}
	hookDownsample("aggregates")
	isTarget := make(map[uint64]bool, nOut)
	for _, t := range targets {
		isTarget[t] = true
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, e := range folded {
			if err := txn.Delete(dataKey(k, e.seq, variantRaw)); err != nil {
				return err
			}
			if !isTarget[e.seq] {
				if err := txn.Delete(metaKey(k, e.seq)); err != nil {
					return err
				}
			}
		}
		for _, o := range outs {
			if err := txn.Set(metaKey(k, o.e.seq), encodeMeta(o.e.meta)); err != nil {
				return err
			}
		}
		if restW != nil {
			if err := txn.Set(dataKey(k, boundary.seq, variantRaw), restW.value); err != nil {
				return err
			}
			if err := txn.Set(metaKey(k, boundary.seq), encodeMeta(restW.e.meta)); err != nil {
				return err
			}
		}
		return txn.Delete([]byte(keyIntent))
	})
	if err != nil {
		return rollback(fmt.Errorf("commit: %w", err))
	}
	hookDownsample("committed")

	for _, e := range folded {
		if i, ok := l.find(e.seq); ok {
			l.removeAt(i)
		}
		s.cache.remove(k, e.seq)
	}
	for _, o := range outs {
		l.add(o.e)
	}
	if restW != nil {
		if i, ok := l.find(boundary.seq); ok {
			l.removeAt(i)
		}
		l.add(restW.e)
		s.cache.remove(k, boundary.seq)
	}
	s.countDrop(k, ReasonDownsampled, nFolded-len(out))
	s.log.Info("spool over its bound: telemetry downsampled to minute aggregates", slog.Int("batches", len(folded)),
		slog.Int("samples", nFolded), slog.Int("aggregates", len(out)), slog.Uint64("first_seq", folded[0].seq),
		slog.Uint64("last_seq", folded[len(folded)-1].seq))
	return true, nil
}

// dropOldestTelemetry drops the oldest telemetry batches not handed out until the spool is at target.
func (s *Spool) dropOldestTelemetry(target int64) (bool, error) {
	const k = telemetry.KindTelemetry
	l := &s.lanes[k]
	var victims []entry
	var freed int64
	items := 0
	for i := l.search(l.lastNext + 1); i < len(l.entries) && s.bytes()-freed > target; i++ {
		victims = append(victims, l.entries[i])
		freed += l.entries[i].size
		items += l.entries[i].items
	}
	if len(victims) == 0 {
		return false, nil
	}
	if err := s.deleteEntries(k, victims); err != nil {
		return false, err
	}
	s.countDrop(k, ReasonFull, items)
	for _, v := range victims {
		s.dropped[k] = append(s.dropped[k], v.seq)
	}
	s.log.Warn("spool full: oldest telemetry dropped", slog.Int("batches", len(victims)), slog.Int("samples", items),
		slog.Uint64("first_seq", victims[0].seq), slog.Uint64("last_seq", victims[len(victims)-1].seq))
	return true, nil
}

// stripOldestEvents removes the events that may be dropped from the oldest event batch that has any, keeping
// its command audit and local command events (the batch goes when none are left).
func (s *Spool) stripOldestEvents(target int64) (bool, error) {
	const k = telemetry.KindEvents
	l := &s.lanes[k]
	for i := l.search(l.lastNext + 1); i < len(l.entries) && s.bytes() > target; i++ {
		e := l.entries[i]
		if e.items == e.protected {
			continue
		}
		b, err := s.read(nil, k, e)
		if err != nil {
			return false, err
		}
		var keep []*pb.Event
		for _, ev := range b.Events.GetEvents() {
			if Protected(ev) {
				keep = append(keep, ev)
			}
		}
		lost := e.items - len(keep)
		if len(keep) == 0 {
			if err := s.deleteEntries(k, []entry{e}); err != nil {
				return false, err
			}
			s.dropped[k] = append(s.dropped[k], e.seq)
		} else {
			v, err := proto.Marshal(&pb.EventBatch{NodeId: b.Events.GetNodeId(), BatchSeq: e.seq, Events: keep})
			if err != nil {
				return false, fmt.Errorf("rewrite event batch %d: %w", e.seq, err)
			}
			m := meta{variant: variantRaw, items: len(keep), protected: len(keep), valueLen: len(v), at: e.at}
			if err := s.db.Update(func(txn *badger.Txn) error {
				if err := txn.Set(dataKey(k, e.seq, variantRaw), v); err != nil {
					return err
				}
				return txn.Set(metaKey(k, e.seq), encodeMeta(m))
			}); err != nil {
				return false, fmt.Errorf("rewrite event batch %d: %w", e.seq, err)
			}
			l.removeAt(i)
			l.add(entry{seq: e.seq, meta: m, size: entrySize(k, m)})
			s.cache.remove(k, e.seq)
		}
		s.countDrop(k, ReasonFull, lost)
		s.log.Warn("spool full: events dropped (command audit and local commands kept)", slog.Uint64("seq", e.seq),
			slog.Int("dropped", lost), slog.Int("kept", len(keep)))
		return true, nil
	}
	return false, nil
}
