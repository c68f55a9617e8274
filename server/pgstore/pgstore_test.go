package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/storetest"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

var quiet = slog.New(slog.DiscardHandler)

func open(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func stores(t *testing.T, dsn string) storetest.Stores {
	s := open(t, dsn)
	return storetest.Stores{Store: s, Pairs: s, Sites: s, Lease: s, Records: s, Reopen: func(t *testing.T) storetest.Stores {
		_ = s.Close()
		return stores(t, dsn)
	}}
}

// TestPostgresSuite: the shared store passes the same suite as the Badger store, plus StrictSeq.
func TestPostgresSuite(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	storetest.Run(t, storetest.Suite{StrictSeq: true, Open: func(t *testing.T) storetest.Stores { return stores(t, pg.NewDatabase(t)) }})
}

// TestTwoActivationsOneEpoch: two activations of one pair's Lease grain (two real LeaseActors in two actor
// systems, each on its own connection pool, as on two members around a membership change) take PROMOTE
// requests from both nodes at once, round after round, with the lease expired and both nodes silent. Each
// epoch must be granted to exactly one holder: checked from every grant the actors replied and from the
// store's epoch ledger.
func TestTwoActivationsOneEpoch(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	cfg := lease.DefaultConfig()
	members := [2]string{"n1", "n2"}
	reg := prometheus.NewRegistry()
	metrics := lease.NewMetrics(reg)
	var pids []*actor.PID
	var systems []*actor.ActorSystem
	for range 2 {
		sys := actors.NewSystem(quiet)
		systems = append(systems, sys)
		st := open(t, dsn)
		pid := sys.Root.Spawn(lease.Props("pair", cfg, lease.Env{Store: st, Members: members, Clock: clk, Logger: quiet, Metrics: metrics}))
		pids = append(pids, pid)
	}
	t.Cleanup(func() {
		for _, s := range systems {
			s.Shutdown()
		}
	})
	const rounds = 30
	grants := map[uint64]map[string]bool{}
	denied := 0
	for r := range rounds {
		// Past the TTL, margin and heartbeat timeout: every activation's decision says "take over".
		clk.Advance(time.Hour)
		type res struct {
			node  string
			reply any
		}
		out := make(chan res, 2)
		for i, node := range members {
			// Activation i gets node i's request; alternate which activation is asked first.
			pid, sys := pids[(i+r)%2], systems[(i+r)%2]
			go func() {
				req := &pb.LeaseRequest{PairId: "pair", NodeId: node, Op: pb.LeaseOp_LEASE_OP_PROMOTE, RequestId: fmt.Sprint(r, node)}
				v, err := sys.Root.RequestFuture(pid, req, 10*time.Second).Result()
				if err != nil {
					v = err
				}
				out <- res{node, v}
			}()
		}
		won := 0
		for range 2 {
			x := <-out
			switch m := x.reply.(type) {
			case *pb.LeaseGrant:
				won++
				if grants[m.GetEpoch()] == nil {
					grants[m.GetEpoch()] = map[string]bool{}
				}
				grants[m.GetEpoch()][m.GetHolder()] = true
			case *pb.LeaseDenied:
				denied++
			default:
				t.Fatalf("round %d: %s got %T %v", r, x.node, m, m)
			}
		}
		if won == 0 {
			t.Fatalf("round %d: nobody was granted the expired lease", r)
		}
	}
	for e, hs := range grants {
		if len(hs) != 1 {
			t.Fatalf("epoch %d granted to %v", e, hs)
		}
	}
	st := open(t, dsn)
	issued, err := st.IssuedEpochs("pair")
	if err != nil {
		t.Fatal(err)
	}
	if len(issued) < 2 {
		t.Fatalf("%d epochs issued over %d takeover rounds", len(issued), rounds)
	}
	for i, e := range issued {
		if e.Epoch != uint64(i+1) {
			t.Fatalf("ledger epochs %v: not 1..n", issued)
		}
		if hs := grants[e.Epoch]; !hs[e.Holder] {
			t.Fatalf("ledger says epoch %d went to %s; actors granted %v", e.Epoch, e.Holder, hs)
		}
	}
	conflicts := counter(t, reg, "hashfleet_server_lease_store_conflicts_total")
	t.Logf("%d rounds, %d epochs issued, %d requests denied, %.0f compare-and-set conflicts between the activations", rounds, len(issued), denied, conflicts)
	if conflicts == 0 {
		t.Fatal("the two activations never raced on one version: the test did not exercise the compare-and-set")
	}
}

// TestMigrations: opening twice applies nothing the second time; members opening at once migrate once; an
// applied migration whose file changed is refused; badly named migration files are refused.
func TestMigrations(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Logger: quiet})
			if err == nil {
				_ = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	s := open(t, dsn)
	ms, err := pgstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(ms))
	}
	applied, err := pgstore.Migrate(ctx, s.Pool(), ms, quiet)
	if err != nil || len(applied) != 0 {
		t.Fatalf("re-migrate applied %v, %v", applied, err)
	}
	// An edited migration is refused.
	edited := append([]pgstore.Migration(nil), ms...)
	edited[0].SQL += "\n-- edited"
	edited[0].Sum = "0000"
	if _, err := pgstore.Migrate(ctx, s.Pool(), edited, quiet); !errors.Is(err, pgstore.ErrMigration) {
		t.Fatalf("edited migration: %v, want ErrMigration", err)
	}
	// A binary that knows fewer migrations than the database has still runs (additive schema).
	if _, err := pgstore.Migrate(ctx, s.Pool(), ms[:1], quiet); err != nil {
		t.Fatalf("older binary: %v", err)
	}
	// A new migration is applied forward.
	next := append(append([]pgstore.Migration(nil), ms...), pgstore.Migration{Version: len(ms) + 1, Name: "x.sql",
		SQL: "CREATE TABLE extra_t (id int)", Sum: "abc"})
	if applied, err := pgstore.Migrate(ctx, s.Pool(), next, quiet); err != nil || len(applied) != 1 {
		t.Fatalf("forward migration: %v, %v", applied, err)
	}
	// A failing migration leaves nothing half-applied.
	bad := append(next, pgstore.Migration{Version: len(next) + 1, Name: "bad.sql", SQL: "CREATE TABLE half_t (id int); SELEC nonsense", Sum: "def"})
	if _, err := pgstore.Migrate(ctx, s.Pool(), bad, quiet); !errors.Is(err, pgstore.ErrMigration) {
		t.Fatalf("broken migration: %v", err)
	}
	var exists bool
	if err := s.Pool().QueryRow(ctx, `SELECT to_regclass('half_t') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("broken migration left its table behind: %v %v", exists, err)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"m/first.sql": {Data: []byte("x")}},
		"gap":       {"m/0001_a.sql": {Data: []byte("x")}, "m/0003_c.sql": {Data: []byte("x")}},
		"duplicate": {"m/0001_a.sql": {Data: []byte("x")}, "m/1_b.sql": {Data: []byte("x")}},
		"zero":      {"m/0000_a.sql": {Data: []byte("x")}},
	} {
		if _, err := pgstore.ParseMigrations(fsys, "m"); !errors.Is(err, pgstore.ErrMigration) {
			t.Errorf("%s: %v, want ErrMigration", name, err)
		}
	}
}

// TestConfigAndConnect: a config an operator must fix, and an unreachable or malformed DSN, fail with a
// clear error and no leaked pool.
func TestConfigAndConnect(t *testing.T) {
	if err := (pgstore.Config{}).Validate(); !errors.Is(err, pgstore.ErrConfig) {
		t.Fatalf("empty DSN: %v", err)
	}
	if err := (pgstore.Config{DSN: "x", MaxConns: -1}).Validate(); !errors.Is(err, pgstore.ErrConfig) {
		t.Fatalf("negative pool: %v", err)
	}
	if _, err := pgstore.Open(context.Background(), pgstore.Config{DSN: "postgres://%zz"}); !errors.Is(err, pgstore.ErrConfig) {
		t.Fatalf("malformed DSN: %v", err)
	}
	port := testsvc.FreePort(t)
	_, err := pgstore.Open(context.Background(), pgstore.Config{DSN: fmt.Sprintf("postgres://x@127.0.0.1:%d/db?connect_timeout=1", port),
		ConnectTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("nobody listening: %v", err)
	}
}

// TestAllocSeqAcrossPools: members allocating seqs for one node at once, each on its own pool, get
// distinct, strictly increasing seqs with no gaps, continuing above a RaiseSeq.
func TestAllocSeqAcrossPools(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	pools := []*pgstore.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	if err := pools[0].RaiseSeq("n1", 100); err != nil {
		t.Fatal(err)
	}
	const per = 40
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := uint64(0)
			for range per {
				s, err := p.AllocSeq("n1")
				if err != nil {
					t.Error(err)
					return
				}
				if s <= last {
					t.Errorf("seq %d after %d on one member", s, last)
				}
				last = s
				mu.Lock()
				if seen[s] {
					t.Errorf("seq %d allocated twice", s)
				}
				seen[s] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for s := uint64(101); s <= 100+per*uint64(len(pools)); s++ {
		if !seen[s] {
			t.Fatalf("seq %d never allocated (gap)", s)
		}
	}
	if _, err := pools[0].AllocSeq("bad/id"); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad node id: %v", err)
	}
}

// TestHistoryPartitionsAndRetention: samples land in daily partitions, queries span partitions, retention
// drops whole old partitions and trims the default one.
func TestHistoryPartitionsAndRetention(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	s := open(t, pg.NewDatabase(t))
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	if err := s.EnsureHistoryPartitions(now.AddDate(0, 0, -3), now); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureHistoryPartitions(now.AddDate(0, 0, -3), now); err != nil { // idempotent
		t.Fatal(err)
	}
	parts, err := s.HistoryPartitions()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 6 || parts[0] != "telemetry_history_p20260307" || parts[5] != "telemetry_history_p20260312" {
		t.Fatalf("partitions %v", parts)
	}
	var samples []*pb.Telemetry
	for h := -80; h <= 0; h += 4 { // 81 h back: the oldest fall before every partition (default partition)
		samples = append(samples, &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: now.Add(time.Duration(h) * time.Hour).UnixMilli()})
	}
	if err := s.AppendHistory("n1", samples); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendHistory("n1", []*pb.Telemetry{{MinerId: ""}}); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad miner id: %v", err)
	}
	got, err := s.History("m1", now.Add(-48*time.Hour), now.Add(time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 13 || got[0].GetObservedAtUnixMs() != now.Add(-48*time.Hour).UnixMilli() {
		t.Fatalf("48h window: %d samples, first %v", len(got), got[0])
	}
	dropped, err := s.ApplyRetention(now, 36*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Cut = 03-09 00:00: partitions of 03-07 and 03-08 end at or before it.
	if len(dropped) != 2 || dropped[0] != "telemetry_history_p20260307" {
		t.Fatalf("dropped %v", dropped)
	}
	got, err = s.History("m1", time.Time{}, now.Add(time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := now.Add(-36 * time.Hour)
	for _, x := range got {
		if time.UnixMilli(x.GetObservedAtUnixMs()).Before(dayStart(cut)) {
			t.Fatalf("sample at %s survived retention", time.UnixMilli(x.GetObservedAtUnixMs()).UTC())
		}
	}
	if len(got) == 0 {
		t.Fatal("retention dropped everything")
	}
	if _, err := s.ApplyRetention(now, 0); err == nil {
		t.Fatal("zero retention accepted")
	}
}

func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestEpochLedgerRefusesSecondHolder: even a writer that passes the version check cannot name a second
// holder for an epoch already issued (the lease_epochs primary key), and the refused write changes nothing.
func TestEpochLedgerRefusesSecondHolder(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	s := open(t, pg.NewDatabase(t))
	st := func(holder string, epoch, version uint64) lease.State {
		x := lease.NewState("p", [2]string{"a", "b"})
		x.Holder, x.Epoch, x.Version, x.ExpiresAt = holder, epoch, version, time.Unix(1_800_000_000, 0)
		return x
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CompareAndSet("p", 0, st("a", 1, 1)))
	must(s.CompareAndSet("p", 1, st("a", 1, 2))) // renewal: same holder, same epoch
	must(s.CompareAndSet("p", 2, st("", 1, 3)))  // release keeps the epoch
	err := s.CompareAndSet("p", 3, st("b", 1, 4))
	if !errors.Is(err, pgstore.ErrEpochIssued) || !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("epoch 1 to b: %v, want ErrEpochIssued and ErrConflict", err)
	}
	cur, err := s.Load("p")
	must(err)
	if cur.Version != 3 || cur.Holder != "" {
		t.Fatalf("refused write changed the lease: %+v", cur)
	}
	must(s.CompareAndSet("p", 3, st("b", 2, 4)))
	issued, err := s.IssuedEpochs("p")
	must(err)
	if len(issued) != 2 || issued[0].Holder != "a" || issued[1].Holder != "b" {
		t.Fatalf("ledger %+v", issued)
	}
}

// TestIssueOnce: members issuing to one node at once (each on its own pool) get gap-free, distinct seqs;
// the same command id issued from two members at once is issued once (the other gets the first command
// back, and the counter does not move).
func TestIssueOnce(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	build := func(id string) func(uint64) (*pb.ControlCommand, error) {
		return func(seq uint64) (*pb.ControlCommand, error) {
			return &pb.ControlCommand{CommandId: id, NodeId: "n1", MonotonicSeq: seq}, nil
		}
	}
	var wg sync.WaitGroup
	type res struct {
		seq     uint64
		existed bool
	}
	out := make(chan res, 40)
	for i := range 20 {
		for _, s := range []*pgstore.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, existed, err := s.IssueOnce("n1", fmt.Sprintf("cmd-%d", i), build(fmt.Sprintf("cmd-%d", i)))
				if err != nil {
					t.Error(err)
					return
				}
				out <- res{c.GetMonotonicSeq(), existed}
			}()
		}
	}
	wg.Wait()
	close(out)
	fresh, again := map[uint64]bool{}, 0
	for r := range out {
		if r.existed {
			again++
			continue
		}
		if fresh[r.seq] {
			t.Fatalf("seq %d issued twice", r.seq)
		}
		fresh[r.seq] = true
	}
	if len(fresh) != 20 || again != 20 {
		t.Fatalf("%d fresh, %d found again; want 20 and 20", len(fresh), again)
	}
	last, q, err := a.NodeQueue("n1")
	if err != nil || last != 20 || len(q) != 20 {
		t.Fatalf("counter %d, queue %d (%v): want 20 without gaps", last, len(q), err)
	}
	// A builder that fails or lies changes nothing.
	if _, _, err := a.IssueOnce("n1", "bad", func(uint64) (*pb.ControlCommand, error) { return nil, errors.New("sign failed") }); err == nil {
		t.Fatal("failing builder accepted")
	}
	if _, _, err := a.IssueOnce("n1", "liar", func(uint64) (*pb.ControlCommand, error) {
		return &pb.ControlCommand{CommandId: "liar", MonotonicSeq: 99}, nil
	}); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("builder with the wrong seq: %v", err)
	}
	if _, _, err := a.IssueOnce("bad/node", "x", build("x")); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad node: %v", err)
	}
	if last, _, _ := a.NodeQueue("n1"); last != 20 {
		t.Fatalf("refused issues moved the counter to %d", last)
	}
}

// TestApplyOnce: a telemetry batch delivered to two members at once, or again later, is applied once:
// latest sample, mark and history rows; a batch at or below the mark writes nothing.
func TestApplyOnce(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	batch := func(seq uint64) store.Batch {
		return store.Batch{Telemetry: []*pb.Telemetry{{MinerId: "m1", ObservedAtUnixMs: int64(seq) * 1000}, {MinerId: "m2", ObservedAtUnixMs: int64(seq) * 1000}},
			Mark: &store.Mark{Node: "n1", Kind: store.KindTelemetry, Seq: seq}}
	}
	for seq := uint64(1); seq <= 10; seq++ {
		var wg sync.WaitGroup
		dups := make(chan bool, 2)
		for _, s := range []*pgstore.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dup, err := s.ApplyOnce(batch(seq))
				if err != nil {
					t.Error(err)
				}
				dups <- dup
			}()
		}
		wg.Wait()
		close(dups)
		applied := 0
		for d := range dups {
			if !d {
				applied++
			}
		}
		if applied != 1 {
			t.Fatalf("batch %d applied %d times", seq, applied)
		}
	}
	if dup, err := a.ApplyOnce(batch(4)); err != nil || !dup {
		t.Fatalf("old batch: dup %v, %v", dup, err)
	}
	h, err := a.History("m1", time.Unix(0, 0), time.Unix(100, 0), 0)
	if err != nil || len(h) != 10 {
		t.Fatalf("history of m1: %d samples (%v), want 10", len(h), err)
	}
	if _, err := a.ApplyOnce(store.Batch{}); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("no mark: %v", err)
	}
	if _, err := a.ApplyOnce(store.Batch{Mark: &store.Mark{Node: "bad/node", Kind: store.KindTelemetry, Seq: 1}}); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad node: %v", err)
	}
	marks, err := a.Marks()
	if err != nil || len(marks) != 1 || marks[0].Seq != 10 {
		t.Fatalf("marks %v %v", marks, err)
	}
}

func TestOrgs(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	s := open(t, pg.NewDatabase(t))
	if err := s.PutOrg("o2", "Two"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOrg("o1", "One"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOrg("o1", "One renamed"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOrg("bad/org", "x"); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad org id: %v", err)
	}
	orgs, err := s.Orgs()
	if err != nil || len(orgs) != 2 || orgs[0].ID != "o1" || orgs[0].Name != "One renamed" || orgs[1].ID != "o2" {
		t.Fatalf("orgs %+v %v", orgs, err)
	}
}
