package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestPairClaimsMigration: pairs stored before the claim tables existed are claimed when the migration
// runs (the first pair by id keeps a device two legacy pairs named), and later declarations see the claims.
func TestPairClaimsMigration(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	ctx := context.Background()
	ms, err := pgstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	before := slices.IndexFunc(ms, func(m pgstore.Migration) bool { return m.Name == "0005_pair_claims_sites.sql" })
	if before < 0 {
		t.Fatal("no pair claims migration")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgstore.Migrate(ctx, pool, ms[:before], quiet); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO pairs (pair_id, org_id, record) VALUES ('pb', 'o', '{"id":"pb","members":["n3","n4"],"devices":["m1","m3"]}')`,
		`INSERT INTO pairs (pair_id, org_id, record) VALUES ('pa', 'o', '{"id":"pa","members":["n1","n2"],"devices":["m1","m2"]}')`,
		`INSERT INTO pairs (pair_id, org_id, record) VALUES ('pc', 'o', '{"id":"pc","members":["n5","n6"],"devices":null}')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dsn) // migrates the rest
	var holder string
	if err := s.Pool().QueryRow(ctx, `SELECT pair_id FROM pair_devices WHERE miner_id = 'm1'`).Scan(&holder); err != nil || holder != "pa" {
		t.Fatalf("m1 claimed by %q (%v), want pa", holder, err)
	}
	for name, rec := range map[string]*store.PairRecord{
		"device of pb": {ID: "px", Members: [2]string{"n7", "n8"}, Devices: []string{"m3"}},
		"member of pc": {ID: "px", Members: [2]string{"n5", "n8"}},
	} {
		if err := s.PutPair(rec); !errors.Is(err, store.ErrExists) {
			t.Errorf("%s: %v, want ErrExists", name, err)
		}
	}
	if err := s.DeletePair("pa"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pair_devices WHERE pair_id = 'pa'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("claims of a deleted pair: %d (%v)", n, err)
	}
}

// TestPairMembers: the Lease grain's lookup of a declared pair's members.
func TestPairMembers(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	s := open(t, pg.NewDatabase(t))
	if err := s.PutPair(&store.PairRecord{ID: "p1", Members: [2]string{"n-a", "n-b"}, Devices: []string{"m1"}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.PairMembers("p1")
	if err != nil || m != [2]string{"n-a", "n-b"} {
		t.Fatalf("members %v, %v", m, err)
	}
	if _, err := s.PairMembers("p2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("undeclared pair: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"", "a/b", "x y"} {
		if _, err := s.PairMembers(id); !errors.Is(err, store.ErrInvalidKey) {
			t.Fatalf("pair id %q: %v, want ErrInvalidKey", id, err)
		}
	}
}

// TestHistoryPartitionLateAndConcurrent: a day whose samples arrived before its partition existed gets the
// partition with its rows moved out of the default one; several pools creating and dropping the same
// partitions at once all succeed, and each partition is created and dropped by exactly one of them.
func TestHistoryPartitionLateAndConcurrent(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	s := open(t, dsn)
	day := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var samples []*pb.Telemetry
	for h := range 30 { // 04-01 00:00 .. 04-02 05:00, all in the default partition
		samples = append(samples, &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: day.Add(time.Duration(h) * time.Hour).UnixMilli()})
	}
	if err := s.AppendHistory("n1", samples); err != nil {
		t.Fatal(err)
	}
	stores := []*pgstore.Store{s, open(t, dsn), open(t, dsn), open(t, dsn)}
	created := make([][]string, len(stores))
	dropped := make([][]string, len(stores))
	errs := make([]error, len(stores))
	race := func(fn func(i int, st *pgstore.Store)) {
		var wg sync.WaitGroup
		for i, st := range stores {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i, st) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("store %d: %v", i, err)
			}
		}
	}
	race(func(i int, st *pgstore.Store) {
		created[i], errs[i] = st.CreateHistoryPartitions(day.AddDate(0, 0, -1), day.AddDate(0, 0, 3))
	})
	count := map[string]int{}
	for _, c := range created {
		for _, p := range c {
			count[p]++
		}
	}
	if len(count) != 5 {
		t.Fatalf("created %v, want 5 partitions", count)
	}
	for p, n := range count {
		if n != 1 {
			t.Fatalf("partition %s created %d times", p, n)
		}
	}
	ctx := context.Background()
	for tbl, want := range map[string]int{"telemetry_history_default": 0, "telemetry_history_p20260401": 24, "telemetry_history_p20260402": 6} {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+tbl).Scan(&n); err != nil || n != want {
			t.Fatalf("%s has %d rows (%v), want %d", tbl, n, err, want)
		}
	}
	now := day.AddDate(0, 0, 3).Add(time.Hour) // cut 04-03 01:00: 03-31 .. 04-02 go
	race(func(i int, st *pgstore.Store) { dropped[i], errs[i] = st.ApplyRetention(now, 24*time.Hour) })
	count = map[string]int{}
	for _, d := range dropped {
		for _, p := range d {
			count[p]++
		}
	}
	if len(count) != 3 {
		t.Fatalf("dropped %v, want 3 partitions", count)
	}
	for p, n := range count {
		if n != 1 {
			t.Fatalf("partition %s dropped %d times", p, n)
		}
	}
	if got, err := s.History("m1", time.Time{}, now, 0); err != nil || len(got) != 0 {
		t.Fatalf("history after retention: %d samples, %v", len(got), err)
	}
	parts, err := s.HistoryPartitions()
	if err != nil || fmt.Sprint(parts) != "[telemetry_history_p20260403 telemetry_history_p20260404]" {
		t.Fatalf("partitions %v, %v", parts, err)
	}
}
