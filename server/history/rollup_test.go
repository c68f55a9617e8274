package history

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
)

const mining = pb.MinerState_MINER_STATE_MINING

func hasKey(t *testing.T, db *badger.DB, k []byte) bool {
	t.Helper()
	for _, got := range keys(t, db, string(k[:4])) {
		if bytes.Equal(got, k) {
			return true
		}
	}
	return false
}

// Samples on both sides of minute and hour boundaries land in the right buckets; a minute closes with the
// first sample of a later minute, an hour with the close of its first later minute; hours average minutes,
// not samples.
func TestBucketBoundaries(t *testing.T) {
	x := newHarness(t)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	minute := func(d time.Duration) []byte { return appendKey(nil, pMinute, "a", t0.Add(d).UnixMilli()) }
	hour := func(d time.Duration) []byte { return appendKey(nil, pHour, "a", t0.Add(d).UnixMilli()) }
	ms := time.Millisecond
	x.appendAt(at(0), tel("a", at(0), 100, 3000, mining))
	x.appendAt(at(time.Minute-ms), tel("a", at(time.Minute-ms), 110, 3100, mining))
	if hasKey(t, x.h.DB(), minute(0)) {
		t.Fatal("minute 10:00 written while open")
	}
	x.appendAt(at(time.Minute), tel("a", at(time.Minute), 50, 2000, mining)) // closes 10:00
	if !hasKey(t, x.h.DB(), minute(0)) {
		t.Fatal("minute 10:00 not written after a sample of 10:01")
	}
	x.appendAt(at(time.Hour-ms), tel("a", at(time.Hour-ms), 80, 2500, pb.MinerState_MINER_STATE_CURTAILED)) // closes 10:01
	x.appendAt(at(time.Hour), tel("a", at(time.Hour), 90, 2600, mining))                                    // closes 10:59
	if !hasKey(t, x.h.DB(), minute(59*time.Minute)) || hasKey(t, x.h.DB(), hour(0)) {
		t.Fatal("after 11:00:00.000: want minute 10:59 written and hour 10 still open")
	}
	x.appendAt(at(time.Hour+30*time.Second), tel("a", at(time.Hour+30*time.Second), 70, 2400, mining))
	x.appendAt(at(time.Hour+time.Minute), tel("a", at(time.Hour+time.Minute), 60, 2300, mining)) // closes 11:00, then hour 10
	if !hasKey(t, x.h.DB(), hour(0)) || hasKey(t, x.h.DB(), hour(time.Hour)) {
		t.Fatal("after 11:01: want hour 10 written and hour 11 open")
	}

	mins := x.series("a", t0, t0.Add(2*time.Hour), time.Minute)
	want := []struct {
		at      time.Duration
		n       int
		h       float64
		minH    float64
		maxH    float64
		state   pb.MinerState
		lastOff time.Duration
	}{
		{0, 2, 105, 100, 110, mining, time.Minute - ms},
		{time.Minute, 1, 50, 50, 50, mining, time.Minute},
		{59 * time.Minute, 1, 80, 80, 80, pb.MinerState_MINER_STATE_CURTAILED, time.Hour - ms},
		{time.Hour, 2, 80, 70, 90, mining, time.Hour + 30*time.Second},
		{time.Hour + time.Minute, 1, 60, 60, 60, mining, time.Hour + time.Minute},
	}
	if len(mins.Points) != len(want) {
		t.Fatalf("minutes: %+v", mins.Points)
	}
	for i, w := range want {
		p := mins.Points[i]
		if p.AtUnixMs != at(w.at).UnixMilli() || p.Samples != w.n || !near(p.HashrateTHs, w.h) || p.HashrateMinTHs != w.minH ||
			p.HashrateMaxTHs != w.maxH || p.State != w.state || p.LastUnixMs != at(w.lastOff).UnixMilli() {
			t.Fatalf("minute %d: %+v, want %+v", i, p, w)
		}
	}
	hrs := x.series("a", t0, t0.Add(2*time.Hour), time.Hour)
	// Hour 10 has minutes of 105, 50 and 80 TH/s: their mean is 78.33; the mean of its 4 samples would be 85.
	if len(hrs.Points) != 2 || !near(hrs.Points[0].HashrateTHs, (105+50+80)/3.0) || hrs.Points[0].Samples != 4 ||
		!near(hrs.Points[1].HashrateTHs, (80+60)/2.0) || hrs.Points[1].Samples != 3 {
		t.Fatalf("hours: %+v", hrs.Points)
	}
	// The same hour read from minutes (a 2-hour step is not a multiple... it is: it reads hours) and from a
	// 30-minute step (minutes): both minute-weighted.
	half := x.series("a", t0, t0.Add(time.Hour), 30*time.Minute)
	if half.Resolution != Minute || len(half.Points) != 2 || !near(half.Points[0].HashrateTHs, (105+50)/2.0) ||
		!near(half.Points[1].HashrateTHs, 80) {
		t.Fatalf("30m steps: %s %+v", half.Resolution, half.Points)
	}
	// A 90 s step does not tile minutes: it reads raw samples.
	raw := x.series("a", t0, t0.Add(3*time.Minute), 90*time.Second)
	if raw.Resolution != Raw || len(raw.Points) != 1 || raw.Points[0].Samples != 3 || !near(raw.Points[0].HashrateTHs, (100+110+50)/3.0) {
		t.Fatalf("90s steps: %s %+v", raw.Resolution, raw.Points)
	}
	// The fleet's minute 10:00 is the one miner's.
	fl := x.totals(Fleet, t0, t0.Add(2*time.Minute), time.Minute)
	if len(fl.Points) != 2 || !near(fl.Points[0].HashrateTHs, 105) || !near(fl.Points[0].PowerW, 3050) || fl.Points[0].Miners != 1 {
		t.Fatalf("fleet: %+v", fl.Points)
	}
}

func TestAppendResults(t *testing.T) {
	x := newHarness(t)
	now := t0.Add(time.Hour)
	s := tel("a", now.Add(-time.Minute), 100, 3000, mining)
	r := x.appendAt(now, s, s, tel("a", now.Add(-2*time.Minute), 1, 1, mining), // same twice, then older
		tel("", now, 1, 1, mining), tel("b\x00c", now, 1, 1, mining), tel("c", time.UnixMilli(0), 1, 1, mining),
		tel("d", now.Add(11*time.Minute), 1, 1, mining),     // beyond MaxFutureSkew
		tel("e", now.Add(9*time.Minute), 1, 1, mining),      // within it
		tel("f", now.Add(-25*time.Hour), 100, 3000, mining), // past the raw retention: rollups only
	)
	// Sorted by time first: a's older sample is applied, then s once; the second s is a duplicate.
	if r != (AppendResult{Written: 3, Expired: 1, Duplicate: 1, Invalid: 4}) {
		t.Fatalf("result %+v", r)
	}
	r = x.appendAt(now, s)
	if r != (AppendResult{Duplicate: 1}) {
		t.Fatalf("resend: %+v", r)
	}
	// f's minute is stored although its sample is not (a sample in a later minute closes it).
	x.appendAt(now, tel("f", now.Add(-25*time.Hour+time.Minute), 100, 3000, mining))
	if got := x.series("f", now.Add(-26*time.Hour), now, time.Minute); len(got.Points) != 2 || got.Resolution != Minute {
		t.Fatalf("f: %+v", got)
	}
	if got := keys(t, x.h.DB(), pRaw+"f"); len(got) != 0 {
		t.Fatalf("f raw keys: %q", got)
	}

	// Late: a's minute closed by grace, then a newer sample of that minute arrives.
	g := tel("g", t0.Add(10*time.Second), 100, 3000, mining)
	x.appendAt(t0.Add(10*time.Second), g)
	if err := x.h.Tick(t0.Add(time.Minute + x.cfg.MinuteCloseGrace)); err != nil {
		t.Fatal(err)
	}
	late := tel("g", t0.Add(20*time.Second), 50, 3000, mining)
	if r := x.appendAt(t0.Add(time.Minute+x.cfg.MinuteCloseGrace), late); r != (AppendResult{Late: 1}) {
		t.Fatalf("late: %+v", r)
	}
	if got := x.series("g", t0, t0.Add(time.Minute), time.Minute); len(got.Points) != 1 || got.Points[0].HashrateTHs != 100 {
		t.Fatalf("g minute: %+v", got.Points)
	}
	if got := x.series("g", t0, t0.Add(time.Minute), 5*time.Second); len(got.Points) != 2 {
		t.Fatalf("g raw: %+v", got.Points)
	}
}

// A silent miner's minute and hour close after their grace; Live counts it stale; once its newest sample is
// older than the raw retention it is forgotten, and when it comes back its state is read from disk.
func TestTickClosesSilentMiners(t *testing.T) {
	x := newHarness(t)
	for d := time.Duration(0); d <= 150*time.Second; d += 30 * time.Second {
		x.appendAt(t0.Add(d), tel("a", t0.Add(d), 100, 3000, mining), tel("b", t0.Add(d), 50, 1000, mining))
	}
	x.appendAt(t0.Add(30*time.Minute), tel("b", t0.Add(30*time.Minute), 50, 1000, mining))
	if live, _ := x.h.Live(Fleet); live.Miners != 1 || live.Stale != 1 || live.HashrateTHs != 50 {
		t.Fatalf("live: %+v", live)
	}
	minute2 := appendKey(nil, pMinute, "a", t0.Add(2*time.Minute).UnixMilli())
	if hasKey(t, x.h.DB(), minute2) {
		t.Fatal("a's last minute closed before its grace")
	}
	if err := x.h.Tick(t0.Add(3*time.Minute + x.cfg.MinuteCloseGrace)); err != nil {
		t.Fatal(err)
	}
	if !hasKey(t, x.h.DB(), minute2) {
		t.Fatal("a's last minute not closed after its grace")
	}
	// The fleet's minute 10:02 has both miners: b's closed at 10:30, a's by the tick.
	fl := x.totals(Fleet, t0.Add(2*time.Minute), t0.Add(3*time.Minute), time.Minute)
	if len(fl.Points) != 1 || fl.Points[0].Miners != 2 || !near(fl.Points[0].HashrateTHs, 150) {
		t.Fatalf("fleet 10:02: %+v", fl.Points)
	}
	hourKey := appendKey(nil, pHour, "a", t0.UnixMilli())
	if err := x.h.Tick(t0.Add(time.Hour + x.cfg.HourCloseGrace - time.Second)); err != nil || hasKey(t, x.h.DB(), hourKey) {
		t.Fatalf("hour closed before its grace (%v)", err)
	}
	if err := x.h.Tick(t0.Add(time.Hour + x.cfg.HourCloseGrace)); err != nil || !hasKey(t, x.h.DB(), hourKey) {
		t.Fatalf("hour not closed after its grace (%v)", err)
	}
	if live, _ := x.h.Live(Fleet); live.Miners+live.Stale != 0 {
		t.Fatalf("idle miners not forgotten: %+v", live)
	}
	// a comes back with a resend of an old sample (a duplicate: its state came back from disk) and a new one.
	now := t0.Add(time.Hour + x.cfg.HourCloseGrace)
	r := x.appendAt(now, tel("a", t0.Add(150*time.Second), 100, 3000, mining), tel("a", now, 90, 3000, mining))
	if r != (AppendResult{Written: 1, Duplicate: 1}) {
		t.Fatalf("comeback: %+v", r)
	}
}

// A restart loses nothing: the open minute is rebuilt from raw samples and the open hour from stored
// minutes, and nothing is counted twice in the groups.
func TestRestartRecoversOpenBuckets(t *testing.T) {
	x := newHarness(t)
	if err := x.h.SetGroups(map[string][]string{"site/x": {"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	put := func(from, to time.Duration) {
		for d := from; d <= to; d += 5 * time.Second {
			v := 100 + float64(d/time.Second%60)
			x.appendAt(t0.Add(d), tel("a", t0.Add(d), v, 3000, mining), tel("b", t0.Add(d), 2*v, 3000, mining))
		}
	}
	put(50*time.Minute, 60*time.Minute+30*time.Second) // minutes 10:50 to 10:59 closed, 11:00 open to :30
	x.reopen()
	put(60*time.Minute+35*time.Second, 62*time.Minute) // 11:00 finished, hour 10 closed by 11:01's close
	x.reopen()
	put(62*time.Minute+5*time.Second, 64*time.Minute)

	// Minute 11:00: 12 samples, 5 before the first restart and 7 after; mean of v = 100 + 0..55 step 5.
	m := x.series("a", t0.Add(time.Hour), t0.Add(61*time.Minute), time.Minute)
	if len(m.Points) != 1 || m.Points[0].Samples != 12 || !near(m.Points[0].HashrateTHs, 127.5) {
		t.Fatalf("minute 11:00: %+v", m.Points)
	}
	h := x.series("a", t0, t0.Add(2*time.Hour), time.Hour)
	if len(h.Points) != 2 || h.Points[0].Samples != 10*12 || !near(h.Points[0].HashrateTHs, 127.5) ||
		h.Points[1].Samples != 12*4+1 {
		t.Fatalf("hours: %+v", h.Points)
	}
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		site := x.totals("site/x", t0.Add(50*time.Minute), t0.Add(64*time.Minute), step)
		for _, p := range site.Points {
			if p.Miners != 2 {
				t.Fatalf("site/x %s at %s: %d miners (a restart counted one twice?)", step, time.UnixMilli(p.AtUnixMs).UTC(), p.Miners)
			}
		}
		if !near(site.Points[0].HashrateTHs, 3*127.5) {
			t.Fatalf("site/x %s: %+v", step, site.Points[0])
		}
	}
}

// A crash that cut a batch short (a minute's and an hour's buckets missing, their raw samples and minutes
// present) is healed at the next open.
func TestRecoveryHealsLostCloses(t *testing.T) {
	dir := t.TempDir()
	db := openBadger(t, dir)
	defer db.Close()
	clk := newHarness(t).clk
	cfg := DefaultConfig()
	cfg.Clock = clk
	h, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for d := time.Duration(0); d <= 61*time.Minute; d += 10 * time.Second {
		clk.Set(t0.Add(d))
		if _, err := h.Append([]*pb.Telemetry{tel("a", t0.Add(d), 100+float64(d/time.Minute), 3000, mining)}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := h.FleetTotals(t0, t0.Add(2*time.Hour), time.Minute)
	beforeH, _ := h.Series("a", t0, t0.Add(2*time.Hour), time.Hour)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash of the last Append leaves: the raw sample of 11:01 written, but not the closes of minute
	// 11:00 and hour 10 it caused, nor their group contributions.
	lost := [][]byte{
		appendKey(nil, pMinute, "a", t0.Add(60*time.Minute).UnixMilli()),
		appendKey(nil, pGroupMin, Fleet, t0.Add(60*time.Minute).UnixMilli()),
		appendKey(nil, pHour, "a", t0.UnixMilli()),
		appendKey(nil, pGroupHour, Fleet, t0.UnixMilli()),
	}
	err = db.Update(func(txn *badger.Txn) error {
		for _, k := range lost {
			if _, err := txn.Get(k); err != nil {
				return err
			}
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	h, err = New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, k := range lost {
		if !hasKey(t, db, k) {
			t.Fatalf("%q not rewritten by recovery", k)
		}
	}
	after, _ := h.FleetTotals(t0, t0.Add(2*time.Hour), time.Minute)
	afterH, _ := h.Series("a", t0, t0.Add(2*time.Hour), time.Hour)
	if len(after.Points) != len(before.Points) || len(afterH.Points) != 2 {
		t.Fatalf("points: %d then %d", len(before.Points), len(after.Points))
	}
	for i := range after.Points {
		if !near(after.Points[i].HashrateTHs, before.Points[i].HashrateTHs) || after.Points[i].Miners != before.Points[i].Miners {
			t.Fatalf("fleet point %d: %+v, before the crash %+v", i, after.Points[i], before.Points[i])
		}
	}
	if afterH.Points[0] != beforeH.Points[0] {
		t.Fatalf("hour 10: %+v, before the crash %+v", afterH.Points[0], beforeH.Points[0])
	}
}

// Retention: Badger drops raw samples when their time to live (computed in business time) ends on the wall
// clock, while their minute stays; queries cut off by business time at once.
func TestRetention(t *testing.T) {
	x := newHarness(t)
	wall := time.Now()
	x.clk.Set(wall)
	old := wall.Add(-x.cfg.RawRetention + 2*time.Second)
	x.appendAt(wall, tel("a", old, 100, 3000, mining), tel("a", wall, 90, 3000, mining))
	if got := keys(t, x.h.DB(), pRaw); len(got) != 2 {
		t.Fatalf("raw keys %d, want 2", len(got))
	}
	left := old.Add(x.cfg.RawRetention).Sub(wall)
	time.Sleep(left + time.Second + 100*time.Millisecond) // Badger's expiry has 1 s granularity
	got := keys(t, x.h.DB(), pRaw)
	if len(got) != 1 || keyTime(got[0]) != wall.UnixMilli() {
		t.Fatalf("after the old sample's retention: raw keys %q", got)
	}
	if m := keys(t, x.h.DB(), pMinute); len(m) != 1 {
		t.Fatalf("minute keys %q, want the old sample's minute", m)
	}

	// Physically gone after compaction, not only hidden: three small flushes put three tables in L0, which
	// Flatten then compacts.
	x.h.Close()
	for i := range 3 {
		db := openBadger(t, x.dir)
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte{'z', byte(i)}, nil) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db := openBadger(t, x.dir)
	if err := db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pRaw), AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("raw entries after compaction: %d (%v), want 1", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Business time moves 25 h on (the wall clock does not): Badger still holds the newer raw sample, but it
	// is past the raw retention for queries, which read its minute instead.
	x.clk.Set(wall.Add(25 * time.Hour))
	x.open()
	if got := keys(t, x.h.DB(), pRaw); len(got) != 1 {
		t.Fatalf("raw keys %q", got)
	}
	s := x.series("a", wall.Add(-time.Minute), wall.Add(time.Minute), 5*time.Second)
	if s.Resolution != Minute || s.Step != time.Minute || len(s.Points) != 1 || s.Points[0].HashrateTHs != 90 {
		t.Fatalf("a range older than the raw retention reads minutes: %+v", s)
	}
	s = x.series("a", old.Add(-time.Minute), wall.Add(time.Minute), time.Hour)
	if s.Resolution != Hour || len(s.Points) != 2 || s.Points[0].HashrateTHs != 100 {
		t.Fatalf("hours: %+v", s)
	}
}

func TestGroups(t *testing.T) {
	x := newHarness(t)
	if err := x.h.SetGroups(map[string][]string{"site/x": {"a", "b"}, "node/1": {"a"}}); err != nil {
		t.Fatal(err)
	}
	x.appendAt(t0, tel("a", t0, 100, 3000, mining), tel("b", t0, 50, 2000, mining))
	x.reopen()
	// b moves to node/1 and site/x is deleted; minute 10:00 closes now, with the new membership.
	if err := x.h.SetGroups(map[string][]string{"node/1": {"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	x.appendAt(t0.Add(time.Minute), tel("a", t0.Add(time.Minute), 100, 3000, mining), tel("b", t0.Add(time.Minute), 50, 2000, mining))
	x.reopen()
	if _, err := x.h.GroupTotals("site/x", t0, t0.Add(time.Hour), time.Minute); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("deleted group: %v", err)
	}
	n := x.totals("node/1", t0, t0.Add(2*time.Minute), time.Minute)
	if len(n.Points) != 2 || n.Points[0].Miners != 2 || !near(n.Points[0].HashrateTHs, 150) || n.Points[1].Miners != 2 {
		t.Fatalf("node/1: %+v", n.Points)
	}
	if live, err := x.h.Live("node/1"); err != nil || live.Miners != 2 {
		t.Fatalf("live node/1: %+v %v", live, err)
	}
	for _, bad := range []map[string][]string{{"": {"a"}}, {"x": {"bad\x01"}}} {
		if err := x.h.SetGroups(bad); !errors.Is(err, ErrInvalidID) {
			t.Fatalf("SetGroups(%q): %v", bad, err)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	x := newHarness(t)
	for _, c := range []struct {
		from, to time.Time
		step     time.Duration
		want     error
	}{
		{t0, t0, time.Minute, ErrInvalidRange},
		{t0, t0.Add(time.Hour), -time.Second, ErrInvalidRange},
		{t0.Add(-20 * time.Hour), t0, time.Second, ErrTooManyPoints},
	} {
		if _, err := x.h.Series("a", c.from, c.to, c.step); !errors.Is(err, c.want) {
			t.Errorf("series %s..%s/%s: %v, want %v", c.from, c.to, c.step, err, c.want)
		}
	}
	if _, err := x.h.Aggregate([]string{"a"}, t0.Add(-time.Hour), t0, time.Minute, 0); !errors.Is(err, ErrInvalidFn) {
		t.Error(err)
	}
	if _, err := x.h.Aggregate(make([]string, 2001), t0.Add(-time.Hour), t0, time.Minute, Sum); !errors.Is(err, ErrTooManyMiners) {
		t.Error(err)
	}
	if _, err := x.h.Series("", t0.Add(-time.Hour), t0, time.Minute); !errors.Is(err, ErrInvalidID) {
		t.Error(err)
	}
	x.h.Close()
	if _, err := x.h.Append(nil); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	if _, err := x.h.FleetTotals(t0.Add(-time.Hour), t0, 0); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
}
