package history

import (
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"pgregory.net/rapid"
)

// propRun is one History on an in-memory Badger that survives restarts (New on the same DB).
type propRun struct {
	t   *rapid.T
	db  *badger.DB
	clk *clock.Fake
	cfg Config
	h   *History
}

func newPropRun(t *rapid.T) *propRun {
	db, err := badgerkv.Open(badgerkv.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := &propRun{t: t, db: db, clk: clock.NewFake(t0)}
	r.cfg = DefaultConfig()
	r.cfg.Clock = r.clk
	r.cfg.Logger = slog.New(slog.DiscardHandler)
	r.start()
	return r
}

func (r *propRun) start() {
	h, err := New(r.db, r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.h = h
}

func (r *propRun) restart() {
	if err := r.h.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.start()
}

func (r *propRun) close() {
	_ = r.h.Close()
	_ = r.db.Close()
}

// Rollups are a function of the samples alone: a random workload (miners reporting at irregular intervals,
// batches of several samples, silences past the close graces) gives minute buckets equal to a naive
// group-by-minute, hours equal to the mean of their minutes, and the same series and fleet totals whether
// or not the history restarts at random moments in between.
func TestRollupsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		miners := rapid.IntRange(1, 3).Draw(t, "miners")
		gaps := []time.Duration{time.Second, 5 * time.Second, 17 * time.Second, 59 * time.Second, 61 * time.Second,
			10 * time.Minute, 59 * time.Minute, 70 * time.Minute}
		type ev struct {
			samples []*pb.Telemetry
			restart bool
		}
		now := t0
		var evs []ev
		naive := make([]map[int64]*want, miners) // miner → minute start → samples
		for i := range naive {
			naive[i] = map[int64]*want{}
		}
		for range rapid.IntRange(1, 60).Draw(t, "batches") {
			var e ev
			for range rapid.IntRange(1, 4).Draw(t, "batch") {
				now = now.Add(rapid.SampledFrom(gaps).Draw(t, "gap"))
				i := rapid.IntRange(0, miners-1).Draw(t, "miner")
				s := tel(minerID(i), now, rapid.Float64Range(0, 200).Draw(t, "ths"), rapid.Float64Range(0, 4000).Draw(t, "w"),
					pb.MinerState(rapid.IntRange(0, 6).Draw(t, "state")))
				e.samples = append(e.samples, s)
				m := floorTo(now.UnixMilli(), minuteMs)
				if naive[i][m] == nil {
					naive[i][m] = &want{}
				}
				naive[i][m].addSample(s)
			}
			e.restart = rapid.IntRange(0, 5).Draw(t, "restart") == 0
			evs = append(evs, e)
		}
		a, b := newPropRun(t), newPropRun(t)
		defer a.close()
		defer b.close()
		for _, e := range evs {
			last := time.UnixMilli(e.samples[len(e.samples)-1].GetObservedAtUnixMs())
			for _, r := range []*propRun{a, b} {
				r.clk.Set(last)
				if res, err := r.h.Append(e.samples); err != nil || res.Written != len(e.samples) {
					t.Fatalf("append: %+v %v", res, err)
				}
			}
			if e.restart {
				b.restart()
			}
		}
		end := now.Add(time.Minute)
		a.clk.Set(end)
		b.clk.Set(end)
		for i := range miners {
			id := minerID(i)
			sa, err := a.h.Series(id, t0, end, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			sb, _ := b.h.Series(id, t0, end, time.Minute)
			if len(sa.Points) != len(naive[i]) || len(sb.Points) != len(sa.Points) {
				t.Fatalf("%s: %d minutes, with restarts %d, naive %d", id, len(sa.Points), len(sb.Points), len(naive[i]))
			}
			hours := map[int64]*want{}
			for j, p := range sa.Points {
				w := naive[i][p.AtUnixMs]
				if w == nil || p.Samples != w.n || !near(p.HashrateTHs, w.hMean()) || !near(p.PowerW, w.pMean()) || p.State != w.state {
					t.Fatalf("%s minute %s: %+v, naive %+v", id, time.UnixMilli(p.AtUnixMs).UTC(), p, w)
				}
				if !samePoint(p, sb.Points[j]) {
					t.Fatalf("%s minute %d: %+v, with restarts %+v", id, j, p, sb.Points[j])
				}
				hr := floorTo(p.AtUnixMs, hourMs)
				if hours[hr] == nil {
					hours[hr] = &want{}
				}
				hours[hr].minutes++
				hours[hr].hSum += w.hMean()
			}
			ha, _ := a.h.Series(id, t0, end, time.Hour)
			hb, _ := b.h.Series(id, t0, end, time.Hour)
			if len(ha.Points) != len(hours) || len(hb.Points) != len(hours) {
				t.Fatalf("%s: %d hours, with restarts %d, naive %d", id, len(ha.Points), len(hb.Points), len(hours))
			}
			for j, p := range ha.Points {
				if w := hours[p.AtUnixMs]; w == nil || !near(p.HashrateTHs, w.hMean()) || !samePoint(p, hb.Points[j]) {
					t.Fatalf("%s hour %s: %+v, with restarts %+v, naive %+v", id, time.UnixMilli(p.AtUnixMs).UTC(), p, hb.Points[j], w)
				}
			}
		}
		for _, step := range []time.Duration{time.Minute, time.Hour} {
			fa, _ := a.h.FleetTotals(t0, end, step)
			fb, _ := b.h.FleetTotals(t0, end, step)
			if len(fa.Points) != len(fb.Points) {
				t.Fatalf("fleet %s: %d points, with restarts %d", step, len(fa.Points), len(fb.Points))
			}
			for j := range fa.Points {
				pa, pb := fa.Points[j], fb.Points[j]
				if pa.AtUnixMs != pb.AtUnixMs || pa.Miners != pb.Miners || !near(pa.HashrateTHs, pb.HashrateTHs) ||
					!near(pa.PowerW, pb.PowerW) || len(pa.States) != len(pb.States) {
					t.Fatalf("fleet %s point %d: %+v, with restarts %+v", step, j, pa, pb)
				}
			}
		}
	})
}

func samePoint(a, b Point) bool {
	return a.AtUnixMs == b.AtUnixMs && a.LastUnixMs == b.LastUnixMs && a.Samples == b.Samples && a.State == b.State &&
		near(a.HashrateTHs, b.HashrateTHs) && near(a.PowerW, b.PowerW) && a.HashrateMinTHs == b.HashrateMinTHs &&
		a.HashrateMaxTHs == b.HashrateMaxTHs && a.TempMaxC == b.TempMaxC && a.FanMinRPM == b.FanMinRPM &&
		(math.IsNaN(a.EfficiencyJTH) == math.IsNaN(b.EfficiencyJTH))
}
