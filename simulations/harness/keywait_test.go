package harness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/simulations/faults"
)

// TestKeyRotationSetUpLoop repeats a trial's set-up (cloud, site, key rotation and revocation) many times:
// CHAOS_KEYROT_LOOP=N (N set-ups), CHAOS_KEYROT_PAIRS=1 for warm-standby pairs, CHAOS_KEYROT_PARALLEL=P at
// once. A set-up that fails writes its components' logs to CHAOS_KEYROT_LOGDIR (default the system temp
// directory). Off by default: a set-up takes a few seconds.
func TestKeyRotationSetUpLoop(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CHAOS_KEYROT_LOOP"))
	if n <= 0 {
		t.Skip("CHAOS_KEYROT_LOOP=N runs N key rotation set-ups")
	}
	par, _ := strconv.Atoi(os.Getenv("CHAOS_KEYROT_PARALLEL"))
	par = max(par, 1)
	logDir := os.Getenv("CHAOS_KEYROT_LOGDIR")
	if logDir == "" {
		logDir = os.TempDir()
	}
	pairs := os.Getenv("CHAOS_KEYROT_PAIRS") == "1"
	var failed, slow atomic.Int64
	var mu sync.Mutex
	var worst time.Duration
	work := make(chan int)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				took, logs, err := keyRotationSetUp(t, int64(1000+i), pairs)
				mu.Lock()
				worst = max(worst, took)
				mu.Unlock()
				if took > keyWaitSlow {
					slow.Add(1)
				}
				if err != nil {
					failed.Add(1)
					f := filepath.Join(logDir, fmt.Sprintf("keyrot-%d.log", i))
					_ = os.WriteFile(f, logs, 0o644)
					t.Errorf("set-up %d: %v (logs in %s)", i, err, f)
					continue
				}
				if took > keyWaitSlow {
					f := filepath.Join(logDir, fmt.Sprintf("keyrot-slow-%d.log", i))
					_ = os.WriteFile(f, logs, 0o644)
					t.Logf("set-up %d: key rotation took %s (logs in %s)", i, took, f)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d set-ups, %d failed, %d slower than %s, slowest %s", n, failed.Load(), slow.Load(), keyWaitSlow, worst)
}

// keyRotationSetUp starts a cloud and one site, rotates and revokes the org's key as a trial does, and
// returns how long the wait for the nodes took and the components' logs.
func keyRotationSetUp(t *testing.T, seed int64, pairs bool) (time.Duration, []byte, error) {
	logs := &lockedBuffer{}
	cfg := Config{Scenario: "mixed", Seed: seed, Pairs: pairs,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}.withDefaults()
	dir, err := os.MkdirTemp("", "hashfleet-keyrot-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tr := &trial{cfg: cfg, dir: dir, open: map[string]int{}, targets: map[int]target{}}
	defer tr.close()
	if tr.cloud, err = startCloud(dir, cfg); err != nil {
		return 0, []byte(logs.String()), err
	}
	s, err := startSite(0, dir, cfg, tr.cloud, seed)
	if err != nil {
		return 0, []byte(logs.String()), err
	}
	tr.sites = append(tr.sites, s)
	att := newAttacker(tr.cloud, tr.sites, cfg.AttemptInterval, seed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	err = att.revokeOldKey(ctx, tr.nodes())
	return time.Since(began), []byte(logs.String()), err
}

// TestRotateThenRevokeReachesTheNode rotates the org's command key and at once revokes the old one, many
// times over, against a real cloud and node (gateway over TLS, Badger): after each pair of calls the node
// must take both key commands, trust the new key and refuse the old one. The revocation follows the
// rotation's answer immediately, so it races the Node actor queueing the announcement.
func TestRotateThenRevokeReachesTheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloud and a site")
	}
	cfg := Config{Scenario: "mixed", Seed: 11}.withDefaults()
	dir := t.TempDir()
	tr := &trial{cfg: cfg, dir: dir, open: map[string]int{}, targets: map[int]target{}}
	defer tr.close()
	var err error
	if tr.cloud, err = startCloud(dir, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := startSite(0, dir, cfg, tr.cloud, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	tr.sites = append(tr.sites, s)
	n := s.nodes[0]
	fleet := tr.cloud.process().Server.Fleet()
	keys := tr.cloud.process().Server.Keys()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mark := func() uint64 {
		g, err := n.process().Node.Gate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g.SeqMark
	}
	for i := range 40 {
		recs := keys.Export()
		old := recs[len(recs)-1].Key.GetKeyId()
		m := mark()
		rot, err := fleet.RotateKeys(ctx, time.Second, []string{n.nodeID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fleet.RevokeKey(ctx, old, []string{n.nodeID}); err != nil {
			t.Fatal(err)
		}
		err = waitUntil(ctx, 5*time.Second, "the node to take both key commands", func() bool {
			_, ks, _ := n.process().Node.TrustedKeys()
			trusted, revoked := false, false
			for _, k := range ks {
				trusted = trusted || (k.GetKeyId() == rot.KeyID && !k.GetRevoked())
				revoked = revoked || (k.GetKeyId() == old && k.GetRevoked())
			}
			return trusted && revoked && mark() >= m+2
		})
		if err != nil {
			att := newAttacker(tr.cloud, tr.sites, 0, cfg.Seed)
			t.Fatalf("rotation %d: %v:%s", i, err, att.keyWaitReport(ctx, map[*siteNode]uint64{n: m}, rot.KeyID, old))
		}
	}
}

// TestKeyCommandsReachAPairMemberBackWithANewEpoch: the active of a pair is cut from the cloud while the org
// rotates its key and revokes the old one, and comes back with a lease epoch its previous stream did not
// carry. Its queued key commands must still reach it as they were signed (the announcement by the old key,
// revoked by then): both taken, the new key trusted, the old one refused.
func TestKeyCommandsReachAPairMemberBackWithANewEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloud and a pair")
	}
	cfg := PairShort()
	cfg.Scenario, cfg.Seed = "kill-active", 12
	cfg = cfg.withDefaults()
	dir := t.TempDir()
	tr := &trial{cfg: cfg, dir: dir, open: map[string]int{}, targets: map[int]target{}}
	defer tr.close()
	var err error
	if tr.cloud, err = startCloud(dir, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := startSite(0, dir, cfg, tr.cloud, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	tr.sites = append(tr.sites, s)
	a := s.nodes[0]
	srv := tr.cloud.process().Server
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cloudView := func() (connected bool, helloEpoch uint64) {
		page, err := srv.Fleet().Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range page.Nodes {
			if ns.ID == a.nodeID {
				return ns.Connected, ns.LeaseEpoch
			}
		}
		return false, 0
	}
	st, err := a.process().Node.LeaseStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, hello := cloudView(); hello == st.Lease.Epoch {
		t.Fatalf("precondition: the cloud's stream of %s already carries its epoch %d", a.name, hello)
	}
	g, err := a.process().Node.Gate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs := srv.Keys().Export()
	old := recs[len(recs)-1].Key.GetKeyId()

	if err := a.wan.Set(faults.Partition()); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 5*time.Second, "the cloud to see the active gone", func() bool { c, _ := cloudView(); return !c }); err != nil {
		t.Fatal(err)
	}
	rot, err := srv.Fleet().RotateKeys(ctx, time.Second, []string{a.nodeID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Fleet().RevokeKey(ctx, old, []string{a.nodeID}); err != nil {
		t.Fatal(err)
	}
	if err := a.wan.Set(faults.Pass()); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 10*time.Second, "the active back with its epoch", func() bool {
		c, e := cloudView()
		return c && e != 0
	}); err != nil {
		t.Fatal(err)
	}
	err = waitUntil(ctx, 5*time.Second, "the active to take both key commands", func() bool {
		_, ks, _ := a.process().Node.TrustedKeys()
		trusted, revoked := false, false
		for _, k := range ks {
			trusted = trusted || (k.GetKeyId() == rot.KeyID && !k.GetRevoked())
			revoked = revoked || (k.GetKeyId() == old && k.GetRevoked())
		}
		gs, err := a.process().Node.Gate(ctx)
		return trusted && revoked && err == nil && gs.SeqMark >= g.SeqMark+2
	})
	if err != nil {
		att := newAttacker(tr.cloud, tr.sites, 0, cfg.Seed)
		t.Fatalf("%v:%s", err, att.keyWaitReport(ctx, map[*siteNode]uint64{a: g.SeqMark}, rot.KeyID, old))
	}
}
