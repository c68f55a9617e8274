package cloudcluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"github.com/prometheus/client_golang/prometheus"
)

func openPG(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// retentionHarness runs RetentionActors on a fake clock in one actor system.
type retentionHarness struct {
	t      *testing.T
	clk    *clock.Fake
	system *actor.ActorSystem
	pids   []*actor.PID
}

func newRetentionHarness(t *testing.T, start time.Time) *retentionHarness {
	h := &retentionHarness{t: t, clk: clock.NewFake(start), system: actors.NewSystem(quiet)}
	t.Cleanup(func() {
		for _, pid := range h.pids {
			_ = h.system.Root.StopFuture(pid).Wait()
		}
		h.system.Shutdown()
	})
	return h
}

func (h *retentionHarness) spawn(cfg cloudcluster.RetentionConfig, st cloudcluster.HistoryMaintainer) *actor.PID {
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	pid := h.system.Root.Spawn(cloudcluster.RetentionProps(cfg, st, h.clk, quiet))
	h.pids = append(h.pids, pid)
	return pid
}

func (h *retentionHarness) status(pid *actor.PID) *cloudcluster.RetentionStatus {
	h.t.Helper()
	st, err := actors.Request[*cloudcluster.RetentionStatus](h.system.Root, pid, &cloudcluster.RetentionStatusRequest{}, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitRuns waits until every actor completed runs runs, and fails on a run that returned an error.
func (h *retentionHarness) waitRuns(runs int) []*cloudcluster.RetentionStatus {
	h.t.Helper()
	out := make([]*cloudcluster.RetentionStatus, len(h.pids))
	actortest.Eventually(h.t, fmt.Sprintf("%d retention runs", runs), func() bool {
		for i, pid := range h.pids {
			if out[i] = h.status(pid); out[i].Runs < runs {
				return false
			}
		}
		return true
	})
	for i, st := range out {
		if st.Runs != runs {
			h.t.Fatalf("actor %d ran %d times, want %d", i, st.Runs, runs)
		}
		if st.LastErr != nil {
			h.t.Fatalf("actor %d run %d: %v", i, st.Runs, st.LastErr)
		}
	}
	return out
}

// advance moves the clock interval by interval, each step firing one run of every actor.
func (h *retentionHarness) advance(d, interval time.Duration, runs *int) {
	for step := time.Duration(0); step < d; step += interval {
		h.clk.Advance(interval)
		*runs++
		h.waitRuns(*runs)
	}
}

func partitionsOf(t *testing.T, st *pgstore.Store) []string {
	t.Helper()
	parts, err := st.HistoryPartitions()
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

func days(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "telemetry_history_p" + n
	}
	return out
}

func countRows(t *testing.T, st *pgstore.Store, table string, from, to time.Time) int {
	t.Helper()
	var n int
	q := `SELECT count(*) FROM ` + table + ` WHERE observed_at >= $1 AND observed_at < $2`
	if err := st.Pool().QueryRow(context.Background(), q, from, to).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRetentionActorKeepsPartitions: a RetentionActor on a fake clock against real Postgres. At start it
// creates the partitions of every day inside the retention through two days ahead; as days pass, new
// partitions appear, partitions past the retention are dropped with their rows, rows inside the retention
// stay, and a day whose samples arrived before its partition existed (default partition) gets its
// partition with the rows moved in.
func TestRetentionActorKeepsPartitions(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	st := openPG(t, pg.NewDatabase(t))
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	h := newRetentionHarness(t, start)
	reg := prometheus.NewRegistry()
	cfg := cloudcluster.RetentionConfig{Interval: 12 * time.Hour, DaysAhead: 2, Keep: 48 * time.Hour,
		Metrics: cloudcluster.NewRetentionMetrics(reg)}
	h.spawn(cfg, st)
	runs := 1
	h.waitRuns(runs)
	if got, want := partitionsOf(t, st), days("20260308", "20260309", "20260310", "20260311", "20260312"); !slices.Equal(got, want) {
		t.Fatalf("after the first run: %v, want %v", got, want)
	}

	// Hourly samples of 03-07 (older than the retention: default partition) through 03-12, and one on
	// 03-14 (no partition yet: default partition).
	var samples []*pb.Telemetry
	for at := time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC)); at = at.Add(time.Hour) {
		samples = append(samples, &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: at.UnixMilli()})
	}
	late := time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC)
	samples = append(samples, &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: late.UnixMilli()})
	if err := st.AppendHistory("n1", samples); err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }

	// A day later: 03-13 appears, 03-08 (ends 03-09 00:00, before the cut 03-09 12:00) goes with its rows;
	// the default partition's rows older than the cut go too.
	h.advance(24*time.Hour, cfg.Interval, &runs)
	if got, want := partitionsOf(t, st), days("20260309", "20260310", "20260311", "20260312", "20260313"); !slices.Equal(got, want) {
		t.Fatalf("after a day: %v, want %v", got, want)
	}
	if n := countRows(t, st, "telemetry_history", day(7), day(9)); n != 0 {
		t.Fatalf("%d rows of 03-07 and 03-08 survived their retention", n)
	}
	if n := countRows(t, st, "telemetry_history", day(9), day(13)); n != 4*24 {
		t.Fatalf("%d rows inside the retention (03-09..03-12), want %d", n, 4*24)
	}

	// Another day: 03-14 is created with the early sample moved out of the default partition; 03-09 goes.
	h.advance(24*time.Hour, cfg.Interval, &runs)
	if got, want := partitionsOf(t, st), days("20260310", "20260311", "20260312", "20260313", "20260314"); !slices.Equal(got, want) {
		t.Fatalf("after two days: %v, want %v", got, want)
	}
	if n := countRows(t, st, "telemetry_history_p20260314", day(14), day(15)); n != 1 {
		t.Fatalf("the early 03-14 sample: %d rows in its partition, want 1", n)
	}
	if n := countRows(t, st, "telemetry_history_default", time.Time{}, day(30)); n != 0 {
		t.Fatalf("%d rows left in the default partition", n)
	}
	if got, err := st.History("m1", day(10), day(15), 0); err != nil || len(got) != 3*24+1 {
		t.Fatalf("history 03-10..03-14: %d samples, %v", len(got), err)
	}

	final := h.status(h.pids[0])
	if !slices.Equal(final.Created, days("20260308", "20260309", "20260310", "20260311", "20260312", "20260313", "20260314")) ||
		!slices.Equal(final.Dropped, days("20260308", "20260309")) {
		t.Fatalf("status: created %v dropped %v", final.Created, final.Dropped)
	}
	if !final.LastRun.Equal(start.Add(48 * time.Hour)) {
		t.Fatalf("last run at %s, want %s", final.LastRun, start.Add(48*time.Hour))
	}
	for name, want := range map[string]float64{
		"hashfleet_server_history_partitions_created_total":                 7,
		"hashfleet_server_history_partitions_dropped_total":                 2,
		"hashfleet_server_history_retention_errors_total":                   0,
		"hashfleet_server_history_retention_last_success_timestamp_seconds": float64(start.Add(48 * time.Hour).Unix()),
	} {
		if got := gatherOne(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func gatherOne(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// TestRetentionActorsConcurrent: three members' actors (each its own connection pool) run at the same
// moments on one database, day after day: no run fails, and every partition is created and dropped by
// exactly one of them.
func TestRetentionActorsConcurrent(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	start := time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC)
	h := newRetentionHarness(t, start)
	cfg := cloudcluster.RetentionConfig{Interval: 24 * time.Hour, DaysAhead: 3, Keep: 24 * time.Hour}
	var stores []*pgstore.Store
	for range 3 {
		st := openPG(t, dsn)
		stores = append(stores, st)
		h.spawn(cfg, st)
	}
	runs := 1
	h.waitRuns(runs)
	h.advance(5*24*time.Hour, cfg.Interval, &runs)
	created, dropped := map[string]int{}, map[string]int{}
	for _, pid := range h.pids {
		st := h.status(pid)
		for _, p := range st.Created {
			created[p]++
		}
		for _, p := range st.Dropped {
			dropped[p]++
		}
	}
	for p, n := range created {
		if n != 1 {
			t.Errorf("partition %s created by %d actors", p, n)
		}
	}
	for p, n := range dropped {
		if n != 1 {
			t.Errorf("partition %s dropped by %d actors", p, n)
		}
	}
	// 05-31 .. 06-09 were created (retention from 05-31, three days ahead of 06-06); 05-31 .. 06-04 dropped.
	if len(created) != 10 || len(dropped) != 5 {
		t.Fatalf("created %v dropped %v", created, dropped)
	}
	if got, want := partitionsOf(t, stores[0]), days("20260605", "20260606", "20260607", "20260608", "20260609"); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
}

// switchable is a HistoryMaintainer whose store a test replaces (a database that comes back).
type switchable struct {
	mu  sync.Mutex
	cur cloudcluster.HistoryMaintainer
}

func (s *switchable) get() cloudcluster.HistoryMaintainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *switchable) set(h cloudcluster.HistoryMaintainer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = h
}

func (s *switchable) CreateHistoryPartitions(from, through time.Time) ([]string, error) {
	return s.get().CreateHistoryPartitions(from, through)
}

func (s *switchable) ApplyRetention(now time.Time, keep time.Duration) ([]string, error) {
	return s.get().ApplyRetention(now, keep)
}

// TestRetentionActorRetriesAfterError: a run that fails (database unreachable) is logged and counted, and
// the next interval runs again.
func TestRetentionActorRetriesAfterError(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	st := openPG(t, pg.NewDatabase(t))
	broken := openPG(t, pg.NewDatabase(t))
	_ = broken.Close() // a closed pool fails every call
	h := newRetentionHarness(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	sw := &switchable{cur: broken}
	cfg := cloudcluster.RetentionConfig{Interval: time.Hour, Metrics: cloudcluster.NewRetentionMetrics(reg)}
	pid := h.spawn(cfg, sw)
	actortest.Eventually(t, "a failed run", func() bool { return h.status(pid).Runs == 1 })
	if s := h.status(pid); s.LastErr == nil {
		t.Fatal("a run on a closed pool succeeded")
	}
	if got := gatherOne(t, reg, "hashfleet_server_history_retention_errors_total"); got != 1 {
		t.Fatalf("errors_total %v", got)
	}
	sw.set(st)
	h.clk.Advance(time.Hour)
	actortest.Eventually(t, "the next run", func() bool { return h.status(pid).Runs == 2 })
	if s := h.status(pid); s.LastErr != nil || len(s.Created) != 4 {
		t.Fatalf("after healing: %+v", s)
	}
	// Stopping the actor disarms its timer.
	if err := h.system.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := h.clk.Pending(); n != 0 {
		t.Fatalf("%d timers armed after the actor stopped", n)
	}
}

// TestRetentionConfig: defaults are documented and bad values are refused with ErrConfig.
func TestRetentionConfig(t *testing.T) {
	d := cloudcluster.DefaultRetentionConfig()
	if d.Interval != time.Hour || d.DaysAhead != 2 || d.Keep != 24*time.Hour || d.Disabled {
		t.Fatalf("defaults %+v", d)
	}
	if err := (cloudcluster.RetentionConfig{}).Validate(); err != nil {
		t.Fatalf("zero config (all defaults): %v", err)
	}
	for name, c := range map[string]cloudcluster.RetentionConfig{
		"interval under a minute": {Interval: time.Second},
		"negative interval":       {Interval: -time.Hour},
		"negative days ahead":     {DaysAhead: -1},
		"days ahead over a month": {DaysAhead: 40},
		"keep under an hour":      {Keep: time.Minute},
		"negative keep":           {Keep: -time.Hour},
	} {
		if err := c.Validate(); !errors.Is(err, cloudcluster.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
