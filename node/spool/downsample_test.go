package spool

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/protobuf/proto"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestDownsampleAveragesPerMinerMinute(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var in []*pb.Telemetry
	for s := 0; s < 120; s += 5 { // miner 0: two full minutes
		in = append(in, sample(0, at(s)))
	}
	// miner 1: minute 0 only; the second sample lost a board and a fan, the last one is unreachable.
	a, b, c := sample(1, at(10)), sample(1, at(20)), sample(1, at(30))
	b.Boards, b.FansRpm = b.Boards[:2], b.FansRpm[:3]
	c.State, c.Hashrate_5SThs, c.PowerW, c.EfficiencyJth, c.PollError = pb.MinerState_MINER_STATE_UNREACHABLE, 0, 0, 0, "connection refused"
	in = append(in, c, a, b) // arrival order does not matter: the newest sample wins

	out := Downsample(in, time.Minute)
	if len(out) != 3 {
		t.Fatalf("%d aggregates, want 3 (miner 0 ×2 minutes, miner 1 ×1)", len(out))
	}
	if out[0].GetMinerId() != minerID(0) || out[1].GetMinerId() != minerID(1) || out[2].GetMinerId() != minerID(0) {
		t.Fatalf("order %s %s %s, want minute then miner", out[0].GetMinerId(), out[1].GetMinerId(), out[2].GetMinerId())
	}
	for i, minute := range []int{0, 1} {
		agg := out[map[int]int{0: 0, 1: 2}[i]]
		var h, temp, pw float64
		for s := minute * 60; s < minute*60+60; s += 5 {
			ms := at(s).UnixMilli()
			h += hashrate(0, ms) / 12
			temp += temp0(0, ms) / 12
			pw += power(0, ms) / 12
		}
		if !near(agg.GetHashrate_5SThs(), h) || !near(agg.GetBoards()[0].GetTempC(), temp) || !near(agg.GetPowerW(), pw) {
			t.Fatalf("miner 0 minute %d: hashrate %v temp %v power %v, want %v %v %v", minute,
				agg.GetHashrate_5SThs(), agg.GetBoards()[0].GetTempC(), agg.GetPowerW(), h, temp, pw)
		}
		if want := at(minute*60 + 55).UnixMilli(); agg.GetObservedAtUnixMs() != want {
			t.Fatalf("minute %d observed at %d, want the newest sample's %d", minute, agg.GetObservedAtUnixMs(), want)
		}
	}
	m1 := out[1]
	if m1.GetState() != pb.MinerState_MINER_STATE_UNREACHABLE || m1.GetPollError() != "connection refused" || m1.GetObservedAtUnixMs() != at(30).UnixMilli() {
		t.Fatalf("miner 1 keeps the newest state: %v %q %d", m1.GetState(), m1.GetPollError(), m1.GetObservedAtUnixMs())
	}
	if want := (hashrate(1, at(10).UnixMilli()) + hashrate(1, at(20).UnixMilli())) / 3; !near(m1.GetHashrate_5SThs(), want) {
		t.Fatalf("miner 1 hashrate %v, want %v (the unreachable sample counts as 0)", m1.GetHashrate_5SThs(), want)
	}
	if want := (a.GetEfficiencyJth() + b.GetEfficiencyJth()) / 2; !near(m1.GetEfficiencyJth(), want) {
		t.Fatalf("miner 1 efficiency %v, want %v (over samples that had one)", m1.GetEfficiencyJth(), want)
	}
	if len(m1.GetBoards()) != 3 || !near(m1.GetBoards()[2].GetTempC(), (a.GetBoards()[2].GetTempC()+c.GetBoards()[2].GetTempC())/2) {
		t.Fatalf("board 2 averages over the samples that had it: %v", m1.GetBoards())
	}
	if m1.GetFansRpm()[3] != 5580 || len(m1.GetFansRpm()) != 4 {
		t.Fatalf("fans %v", m1.GetFansRpm())
	}
	if in[len(in)-1].GetBoards()[0].GetTempC() != temp0(1, at(20).UnixMilli()) {
		t.Fatal("Downsample modified its input")
	}
}

func temp0(miner int, ms int64) float64 { return temp(miner, ms, 0) }

func TestPlanRegion(t *testing.T) {
	const w = 60_000
	e := func(minute float64, size int64) entry {
		return entry{meta: meta{maxObs: int64(minute * w)}, size: size}
	}
	for _, c := range []struct {
		name    string
		cands   []entry
		step    int64
		end     int
		cut     int64
		ok      bool
		maxBtch int
	}{
		{"one window: nothing to fold", []entry{e(0.1, 10), e(0.5, 10), e(0.9, 10)}, 1, 0, 0, false, 100},
		{"first boundary after the step", []entry{e(0.2, 10), e(0.8, 10), e(1.1, 10), e(1.7, 10), e(2.3, 10)}, 15, 2, 1, true, 100},
		{"step not reached: last boundary", []entry{e(0.2, 10), e(1.1, 10), e(2.3, 10), e(2.4, 10)}, 1000, 2, 2, true, 100},
		{"a later boundary once the step is read", []entry{e(0.2, 10), e(1.1, 10), e(1.5, 10), e(3.2, 10)}, 25, 3, 2, true, 100},
		{"bounded by max batches", []entry{e(0.2, 10), e(1.1, 10), e(1.5, 10), e(3.2, 10)}, 1000, 1, 1, true, 2},
		{"a late batch is not a boundary", []entry{e(1.5, 10), e(0.9, 10), e(1.7, 10), e(2.0, 10)}, 1, 3, 2, true, 100},
	} {
		end, cut, ok := planRegion(c.cands, c.step, w, c.maxBtch)
		if ok != c.ok || (ok && (end != c.end || cut != c.cut)) {
			t.Errorf("%s: end %d cut %d ok %v, want %d %d %v", c.name, end, cut, ok, c.end, c.cut, c.ok)
		}
	}
}

// peek returns every batch of kind with its variant, without handing it out (Next would protect it).
func peek(t testing.TB, s *Spool, kind telemetry.Kind) ([]telemetry.Batch, []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []telemetry.Batch
	var variants []byte
	for _, e := range s.lanes[kind].entries {
		b, err := s.read(nil, kind, e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		variants = append(variants, e.variant)
	}
	return out, variants
}

// record remembers every sample appended, per miner, to check aggregates against.
type record map[string][]*pb.Telemetry

func (r record) add(b telemetry.Batch) {
	for _, s := range b.Telemetry.GetSamples() {
		r[s.GetMinerId()] = append(r[s.GetMinerId()], s)
	}
}

// checkTelemetry verifies what the spool holds against what was appended: per miner, samples in time order;
// each aggregate is the exact average of the appended samples of its miner-minute and is the only aggregate
// for that miner-minute; raw samples are appended ones, none in a minute that also has an aggregate. It
// returns the number of aggregated and raw samples, and the raw samples' minute span.
func checkTelemetry(t *testing.T, s *Spool, rec record) (aggregates, raw int, rawMinutes int64) {
	t.Helper()
	bs, variants := peek(t, s, telemetry.KindTelemetry)
	type mm struct {
		miner  string
		minute int64
	}
	aggMinutes, rawSeen := map[mm]bool{}, map[mm]bool{}
	last := map[string]int64{}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i, b := range bs {
		for _, smp := range b.Telemetry.GetSamples() {
			id, at := smp.GetMinerId(), smp.GetObservedAtUnixMs()
			if at < last[id] {
				t.Fatalf("miner %s goes back in time at batch %d: %d after %d", id, b.Seq, at, last[id])
			}
			last[id] = at
			k := mm{id, bucketOf(at, 60_000)}
			if variants[i] == variantRaw {
				raw++
				rawSeen[k] = true
				lo, hi = min(lo, k.minute), max(hi, k.minute)
				continue
			}
			aggregates++
			if aggMinutes[k] {
				t.Fatalf("two aggregates for %s minute %d", id, k.minute)
			}
			aggMinutes[k] = true
			var h, tmp, pw float64
			var n int
			var newest int64
			for _, o := range rec[id] {
				if bucketOf(o.GetObservedAtUnixMs(), 60_000) == k.minute {
					h, tmp, pw, n = h+o.GetHashrate_5SThs(), tmp+o.GetBoards()[0].GetTempC(), pw+o.GetPowerW(), n+1
					newest = max(newest, o.GetObservedAtUnixMs())
				}
			}
			if n == 0 || !near(smp.GetHashrate_5SThs(), h/float64(n)) || !near(smp.GetBoards()[0].GetTempC(), tmp/float64(n)) ||
				!near(smp.GetPowerW(), pw/float64(n)) || at != newest {
				t.Fatalf("aggregate %s minute %d: hashrate %v temp %v power %v at %d; want the mean of %d samples %v %v %v at %d",
					id, k.minute, smp.GetHashrate_5SThs(), smp.GetBoards()[0].GetTempC(), smp.GetPowerW(), at, n, h/float64(n), tmp/float64(n), pw/float64(n), newest)
			}
		}
	}
	for k := range rawSeen {
		if aggMinutes[k] {
			t.Fatalf("%s minute %d has an aggregate and raw samples", k.miner, k.minute)
		}
	}
	if raw > 0 {
		rawMinutes = hi - lo + 1
	}
	return aggregates, raw, rawMinutes
}

// protectedIDs returns the ids of the command audit and local command events held, and how many others.
func protectedIDs(t *testing.T, s *Spool) (map[string]bool, int) {
	bs, _ := peek(t, s, telemetry.KindEvents)
	ids, others := map[string]bool{}, 0
	for _, b := range bs {
		for _, e := range b.Events.GetEvents() {
			if Protected(e) {
				ids[e.GetEventId()] = true
			} else {
				others++
			}
		}
	}
	return ids, others
}

func TestSpoolFullDownsamplesThenDropsNeverCommandsOrAudit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBytes, c.DownsampleStep = 1<<20, 64<<10 })
	st := newSite(20, 40) // 20 miners every 5 s, 40 samples per batch: a batch every 10 s of site time
	rec := record{}
	wantProtected := map[string]bool{}
	appendT := func() {
		b := st.batch()
		rec.add(b)
		h.append(b)
		if by := h.s.Stats().Bytes; by > h.cfg.MaxBytes {
			t.Fatalf("spool holds %d bytes, above its bound %d", by, h.cfg.MaxBytes)
		}
	}
	appendE := func(stateChanges int) {
		b := st.events(stateChanges)
		for _, e := range b.Events.GetEvents() {
			if Protected(e) {
				wantProtected[e.GetEventId()] = true
			}
		}
		h.append(b)
	}

	// 1. Up to the bound nothing changes; past it the oldest telemetry is downsampled, nothing dropped.
	for i := 0; h.s.Stats().Telemetry.Aggregated == 0; i++ {
		if i > 10_000 {
			t.Fatal("never downsampled")
		}
		appendT()
		if i%6 == 0 {
			appendE(3)
		}
	}
	if h.dropped(ReasonDownsampled) == 0 || h.dropped(ReasonFull) != 0 {
		t.Fatalf("first shed: downsampled %v full %v", h.dropped(ReasonDownsampled), h.dropped(ReasonFull))
	}
	aggs, raw, _ := checkTelemetry(t, h.s, rec)
	if aggs == 0 || raw == 0 {
		t.Fatalf("after the first shed: %d aggregates, %d raw", aggs, raw)
	}
	if by := h.s.Stats().Bytes; by > h.cfg.shedTo() {
		t.Fatalf("shed stopped at %d bytes, above the shed-to mark %d", by, h.cfg.shedTo())
	}
	t.Logf("first shed: %d samples folded, %d aggregates and %d raw samples held", int(h.dropped(ReasonDownsampled))+aggs, aggs, raw)

	// 2. Keep going: everything but the newest minutes is downsampled before anything is dropped.
	for i := 0; h.dropped(ReasonFull) == 0; i++ {
		if i > 100_000 {
			t.Fatal("never dropped")
		}
		before := h.s.Stats()
		appendT()
		if i%6 == 0 {
			appendE(3)
		}
		if h.dropped(ReasonFull) > 0 {
			// The drop came only once the raw telemetry left was the open minute and its boundary.
			_, raw, span := checkTelemetry(t, h.s, rec)
			t.Logf("first drop: before it %d batches (%d of minute aggregates); raw left %d samples over %d minutes",
				before.Telemetry.Batches, before.Telemetry.Aggregated, raw, span)
			if span > 3 {
				t.Fatalf("dropped while %d minutes of raw telemetry could still be downsampled", span)
			}
		}
	}
	checkTelemetry(t, h.s, rec)

	// 3. Command audit and local command events are all there, whatever was dropped.
	got, _ := protectedIDs(t, h.s)
	if len(got) != len(wantProtected) {
		t.Fatalf("%d protected events held, %d appended", len(got), len(wantProtected))
	}

	// 4. Protected events alone over the bound: telemetry and droppable events go first, then new telemetry is
	// refused, and event batches are still taken.
	big := func() {
		b := st.events(2)
		for _, e := range b.Events.GetEvents() {
			if e.GetAudit() != nil {
				e.Audit.MinerIds = make([]string, 2000)
				for i := range e.Audit.MinerIds {
					e.Audit.MinerIds[i] = minerID(i)
				}
			}
		}
		for _, e := range b.Events.GetEvents() {
			if Protected(e) {
				wantProtected[e.GetEventId()] = true
			}
		}
		h.append(b)
	}
	for i := 0; h.s.Stats().Events.Bytes <= h.cfg.MaxBytes; i++ {
		big()
		if i > 1000 {
			t.Fatal("events never filled the spool")
		}
	}
	stats := h.s.Stats()
	if stats.Telemetry.Batches != 0 {
		t.Fatalf("%d telemetry batches left while protected events exceed the bound", stats.Telemetry.Batches)
	}
	if got, others := protectedIDs(t, h.s); len(got) != len(wantProtected) || others != 0 {
		t.Fatalf("protected %d of %d; %d droppable events left", len(got), len(wantProtected), others)
	}
	if h.droppedEvents(ReasonFull) == 0 {
		t.Fatal("droppable events were not counted as dropped")
	}
	refusedBefore := h.dropped(ReasonRefused)
	b := st.batch()
	if _, err := h.s.Append(b); !errors.Is(err, ErrFull) {
		t.Fatalf("telemetry into a spool full of audit records: %v, want ErrFull", err)
	}
	if got := h.dropped(ReasonRefused) - refusedBefore; got != float64(len(b.Telemetry.GetSamples())) {
		t.Fatalf("refused samples counted %v, want %d", got, len(b.Telemetry.GetSamples()))
	}
	big() // still accepted
	h.reopen()
	if got, _ := protectedIDs(t, h.s); len(got) != len(wantProtected) {
		t.Fatalf("after a restart %d protected events of %d", len(got), len(wantProtected))
	}
}

// Batches Next handed out may be on the wire: shedding never reshapes or drops them.
func TestHandedOutBatchesAreNeverShed(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBytes, c.DownsampleStep = 1<<20, 32<<10 })
	st := newSite(20, 40)
	var first []telemetry.Batch
	for range 3 {
		b := st.batch()
		first = append(first, b)
		h.append(b)
	}
	var after uint64
	for range 3 {
		b, _, _ := h.s.Next(telemetry.KindTelemetry, after)
		after = b.Seq
	}
	for h.dropped(ReasonFull) == 0 {
		h.append(st.batch())
	}
	bs, variants := peek(t, h.s, telemetry.KindTelemetry)
	for i := range first {
		if bs[i].Seq != first[i].Seq || variants[i] != variantRaw || !proto.Equal(bs[i].Telemetry, first[i].Telemetry) {
			t.Fatalf("handed-out batch %d was changed by shedding", first[i].Seq)
		}
	}
	if bs[3].Seq == 4 {
		t.Fatal("nothing after the handed-out batches was dropped")
	}
}

// kill -9 at any point of a downsample step leaves either the raw batches or their aggregates: every sample
// exactly once.
func TestDownsampleStepIsCrashSafe(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBytes, c.DownsampleStep = 1<<20, 64<<10 })
	st := newSite(20, 40)
	rec := record{}
	images := map[string]string{}
	var samplesBefore int
	testHookDownsample = func(point string) {
		if _, ok := images[point]; !ok {
			images[point] = h.crashImage()
		}
	}
	t.Cleanup(func() { testHookDownsample = nil })
	for len(images) < 2 {
		samplesBefore = h.s.Stats().Telemetry.Items
		b := st.batch()
		rec.add(b)
		h.append(b)
	}
	testHookDownsample = nil
	samplesAfter := h.s.Stats().Telemetry.Items

	// Crash after the aggregates were written, before the commit: the raw batches are all there, the
	// aggregates and the intent are gone after Open.
	s1 := h.openAt(images["aggregates"])
	bs, variants := peek(t, s1, telemetry.KindTelemetry)
	n := 0
	for i, b := range bs {
		if variants[i] != variantRaw {
			t.Fatalf("an uncommitted aggregate survived: batch %d", b.Seq)
		}
		n += len(b.Telemetry.GetSamples())
	}
	if n != samplesBefore {
		t.Fatalf("crash before commit: %d samples, want the %d held before the step", n, samplesBefore)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, images["aggregates"], prefixTelemetry); slices.ContainsFunc(keys, func(k []byte) bool { return k[len(k)-1] == variantAggregated }) {
		t.Fatal("aggregated keys left on disk after the rollback")
	}
	if keys := keysUnder(t, images["aggregates"], keyIntent); len(keys) != 0 {
		t.Fatal("intent left on disk after the rollback")
	}

	// Crash right after the commit: the step is whole.
	s2 := h.openAt(images["committed"])
	_, items := s2.Len(telemetry.KindTelemetry)
	if st := s2.Stats(); st.Telemetry.Aggregated == 0 || items >= samplesBefore+40 {
		t.Fatalf("crash after commit: %d aggregated batches, %d samples (before the step %d)", st.Telemetry.Aggregated, items, samplesBefore)
	}
	// and it matches the running spool, which finished the append after the step
	if items != samplesAfter-40 && items != samplesAfter {
		t.Fatalf("crash image after commit holds %d samples, the live spool %d", items, samplesAfter)
	}
}

func keysUnder(t *testing.T, dir, prefix string) [][]byte {
	t.Helper()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out [][]byte
	_ = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return out
}

func TestIncompressibleTelemetryIsDroppedNotLooped(t *testing.T) {
	// One sample per miner per minute already: downsampling gains nothing, so the oldest is dropped.
	h := newHarness(t, func(c *Config) { c.MaxBytes, c.DownsampleStep = 1<<20, 16<<10 })
	st := newSite(40, 40)
	st.interval = time.Minute
	for h.dropped(ReasonFull) == 0 {
		h.append(st.batch())
	}
	if h.dropped(ReasonDownsampled) != 0 {
		t.Fatalf("downsampled %v samples of one-per-minute telemetry", h.dropped(ReasonDownsampled))
	}
	if by := h.s.Stats().Bytes; by > h.cfg.MaxBytes {
		t.Fatalf("%d bytes held", by)
	}
}
