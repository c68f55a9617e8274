package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TestSimulatedDay ingests a simulated fleet polled every 5 s (a day of 200 miners, 3.5M samples, with
// HASHFLEET_LONG=1; 3 hours of 40 miners by default), restarting halfway through a minute, and checks every
// series and total against averages computed by hand from the same readings.
func TestSimulatedDay(t *testing.T) {
	miners, dur := 40, 3*time.Hour
	if longRun() {
		miners, dur = 200, 24*time.Hour
	}
	x := newHarness(t)
	s := sim{miners: miners, start: t0}
	groups := map[string][]string{}
	for i := range miners {
		site, node := fmt.Sprintf("site/%d", i%4), fmt.Sprintf("node/%d", i%8)
		groups[site] = append(groups[site], minerID(i))
		groups[node] = append(groups[node], minerID(i))
	}
	if err := x.h.SetGroups(groups); err != nil {
		t.Fatal(err)
	}
	ticks := int(dur / simTick)
	const perMinute = int(time.Minute / simTick)
	minutes := ticks / perMinute
	wants := make([]want, miners*minutes) // [miner][minute]
	restartAt := ticks/2 + 5

	began := time.Now()
	var total AppendResult
	batch := make([]*pb.Telemetry, 0, miners*perMinute)
	for k := range ticks {
		for i := range miners {
			tm := s.sample(i, k)
			batch = append(batch, tm)
			wants[i*minutes+k/perMinute].addSample(tm)
		}
		// A node sends what it polled every 30 s; one Append per batch.
		if (k+1)%6 == 0 || k == ticks-1 {
			r := x.appendAt(s.at(k), batch...)
			total.Written += r.Written
			total.Duplicate += r.Duplicate + r.Late + r.Invalid + r.Expired
			batch = batch[:0]
		}
		if k == restartAt {
			x.reopen()
		}
	}
	t.Logf("ingested %d samples of %d miners in %s", total.Written, miners, time.Since(began).Round(time.Millisecond))
	if total.Written != miners*ticks || total.Duplicate != 0 {
		t.Fatalf("written %d, other %d; want %d and 0", total.Written, total.Duplicate, miners*ticks)
	}
	end := s.at(ticks)
	x.clk.Set(end)

	// Per miner, every minute and every hour, including the open ones.
	for _, i := range []int{0, 3, 5, miners / 2, miners - 1} {
		id := minerID(i)
		got := x.series(id, t0, end, time.Minute)
		if got.Resolution != Minute || len(got.Points) != minutes {
			t.Fatalf("%s: %s resolution, %d points; want 1m and %d", id, got.Resolution, len(got.Points), minutes)
		}
		for m, p := range got.Points {
			checkPoint(t, fmt.Sprintf("%s minute %d", id, m), p, t0.Add(time.Duration(m)*time.Minute), &wants[i*minutes+m])
		}
		hours := x.series(id, t0, end, time.Hour)
		if hours.Resolution != Hour || len(hours.Points) != minutes/60 {
			t.Fatalf("%s: %s resolution, %d points; want 1h and %d", id, hours.Resolution, len(hours.Points), minutes/60)
		}
		for hr, p := range hours.Points {
			w := want{minutes: 60, temp: -1000, fan: -1}
			for m := hr * 60; m < hr*60+60; m++ {
				mw := &wants[i*minutes+m]
				w.n += mw.n
				w.hSum += mw.hMean()
				w.pSum += mw.pMean()
				if m == hr*60 {
					w.hMin, w.hMax = mw.hMin, mw.hMax
				}
				w.hMin, w.hMax = min(w.hMin, mw.hMin), max(w.hMax, mw.hMax)
				w.temp = max(w.temp, mw.temp)
				if mw.fan >= 0 && (w.fan < 0 || mw.fan < w.fan) {
					w.fan = mw.fan
				}
				w.state = mw.state
			}
			checkPoint(t, fmt.Sprintf("%s hour %d", id, hr), p, t0.Add(time.Duration(hr)*time.Hour), &w)
		}
		// The last ten minutes at full resolution: each point is one sample.
		raw := x.series(id, end.Add(-10*time.Minute), end, simTick)
		if raw.Resolution != Raw || len(raw.Points) != 120 {
			t.Fatalf("%s raw: %s resolution, %d points; want raw and 120", id, raw.Resolution, len(raw.Points))
		}
		for j, p := range raw.Points {
			k := ticks - 120 + j
			var w want
			w.addSample(s.sample(i, k))
			checkPoint(t, fmt.Sprintf("%s tick %d", id, k), p, s.at(k), &w)
		}
	}

	// Fleet totals by minute and by hour: sums of the miners' hand-computed means.
	fleet := x.totals(Fleet, t0, end, time.Minute)
	if len(fleet.Points) != minutes {
		t.Fatalf("fleet: %d points, want %d", len(fleet.Points), minutes)
	}
	for m, p := range fleet.Points {
		var h, pw float64
		states := map[pb.MinerState]int{}
		for i := range miners {
			w := &wants[i*minutes+m]
			h += w.hMean()
			pw += w.pMean()
			states[w.state]++
		}
		if p.Miners != miners || !near(p.HashrateTHs, h) || !near(p.PowerW, pw) || !near(p.EfficiencyJTH, pw/h) {
			t.Fatalf("fleet minute %d: %+v; want %d miners, %.6f TH/s, %.3f W", m, p, miners, h, pw)
		}
		if fmt.Sprint(p.States) != fmt.Sprint(states) {
			t.Fatalf("fleet minute %d: states %v, want %v", m, p.States, states)
		}
	}
	fleetH := x.totals(Fleet, t0, end, time.Hour)
	if fleetH.Resolution != Hour || len(fleetH.Points) != minutes/60 {
		t.Fatalf("fleet hours: %s, %d points", fleetH.Resolution, len(fleetH.Points))
	}
	for hr, p := range fleetH.Points {
		var h float64
		for m := hr * 60; m < hr*60+60; m++ {
			h += fleet.Points[m].HashrateTHs
		}
		if !near(p.HashrateTHs, h/60) || p.Miners != miners {
			t.Fatalf("fleet hour %d: %.6f TH/s %d miners; want %.6f (the mean of its minutes) and %d", hr, p.HashrateTHs, p.Miners, h/60, miners)
		}
	}

	// A site's rollups kept at ingest equal the sum over its members' series.
	for _, step := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour} {
		site := x.totals("site/1", t0, end, step)
		agg, err := x.h.Aggregate(groups["site/1"], t0, end, step, Sum)
		if err != nil {
			t.Fatal(err)
		}
		if len(site.Points) != len(agg.Points) || len(site.Points) == 0 {
			t.Fatalf("step %s: site %d points, aggregate %d", step, len(site.Points), len(agg.Points))
		}
		for j := range site.Points {
			g, a := site.Points[j], agg.Points[j]
			if g.AtUnixMs != a.AtUnixMs || g.Miners != a.Miners || !near(g.HashrateTHs, a.HashrateTHs) || !near(g.PowerW, a.PowerW) ||
				g.TempMaxC != a.TempMaxC {
				t.Fatalf("step %s point %d: group %+v, aggregate %+v", step, j, g, a)
			}
		}
	}

	// Miners by state at a moment, and live.
	at := t0.Add(61*time.Minute + 10*time.Second)
	p, err := x.h.At(Fleet, at)
	if err != nil {
		t.Fatal(err)
	}
	if p.States[pb.MinerState_MINER_STATE_STOPPED] != fleet.Points[61].States[pb.MinerState_MINER_STATE_STOPPED] || p.Miners != miners {
		t.Fatalf("at %s: %+v", at, p)
	}
	live, err := x.h.Live(Fleet)
	if err != nil || live.Miners != miners || live.Stale != 0 {
		t.Fatalf("live: %+v, %v", live, err)
	}
	if err := x.h.Close(); err != nil {
		t.Fatal(err)
	}
	disk := diskBytes(t, x.dir)
	t.Logf("on disk after close: %d bytes, %.1f per sample (raw, minutes, hours, groups)", disk, float64(disk)/float64(total.Written))
}

func checkPoint(t *testing.T, what string, p Point, at time.Time, w *want) {
	t.Helper()
	temp := w.temp
	if temp < -100 {
		temp = 0
	}
	if p.AtUnixMs != at.UnixMilli() || p.Samples != w.n || !near(p.HashrateTHs, w.hMean()) || !near(p.PowerW, w.pMean()) ||
		!near(p.HashrateMinTHs, w.hMin) || !near(p.HashrateMaxTHs, w.hMax) || !near(p.TempMaxC, temp) ||
		p.FanMinRPM != w.fan || p.State != w.state {
		t.Fatalf("%s: got %+v\nwant at %s n=%d h=%.6f [%.3f, %.3f] p=%.3f temp=%.1f fan=%d state=%s", what, p,
			at.Format(time.TimeOnly), w.n, w.hMean(), w.hMin, w.hMax, w.pMean(), temp, w.fan, w.state)
	}
}
