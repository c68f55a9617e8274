package cloudcluster_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

func openStore(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// crossMember runs the scenario of issue #11 on three members: nodes spread over the members' gateways;
// every member issues a command to every node; each node executes every command exactly once, in strictly
// increasing seq order without gaps; telemetry sent twice (second time through another member) is applied
// once.
func crossMember(t *testing.T, nodes int, mk func(i int, st *pgstore.Store) cloudcluster.Config) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	ms := startMembers(t, 3, func(i int) cloudcluster.Config { return mk(i, openStore(t, dsn)) })
	waitMembers(t, ms, 3)
	addrs := func() []string { return []string{ms[0].gwAddr, ms[1].gwAddr, ms[2].gwAddr} }
	var ns []*fakeNode
	for i := range nodes {
		ns = append(ns, startNode(t, fmt.Sprintf("node-%02d", i), addrs, i%3))
	}
	for _, n := range ns {
		n.waitConnected(t, 15*time.Second)
	}
	ctx := context.Background()
	const perMember = 2
	start := time.Now()
	issued := 0
	for _, n := range ns {
		_, _, at := n.snapshot()
		for mi, m := range ms {
			for k := range perMember {
				rep, err := m.m.Issue(ctx, cloudcluster.Command{NodeID: n.id, CommandID: fmt.Sprintf("%s-from%d-%d", n.id, mi, k), Actor: "test"})
				if err != nil {
					t.Fatalf("issue to %s on member %d: %v", n.id, mi, err)
				}
				issued++
				if !rep.GetSent() {
					t.Fatalf("command to connected %s not sent: %+v", n.id, rep)
				}
				if at != ms[0].gwAddr && at != ms[1].gwAddr && at != ms[2].gwAddr {
					t.Fatalf("node connected to unknown gateway %s", at)
				}
			}
		}
	}
	want := 3 * perMember
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range ns {
		for {
			ex, _, _ := n.snapshot()
			if len(ex) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s executed %d of %d commands", n.id, len(ex), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ex, refused, _ := n.snapshot()
		for i, c := range ex {
			if c.GetMonotonicSeq() != uint64(i+1) {
				t.Fatalf("%s executed seqs out of order or with gaps at %d: %d", n.id, i, c.GetMonotonicSeq())
			}
		}
		if refused != 0 {
			t.Fatalf("%s was sent %d commands twice", n.id, refused)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d commands issued on 3 members to %d nodes and executed in %s (%.0f commands/s)", issued, nodes, elapsed,
		float64(issued)/elapsed.Seconds())

	// The grain knows where each node's stream is, whichever member is asked.
	for i, n := range ns {
		_, _, at := n.snapshot()
		st, err := ms[(i+1)%3].m.NodeStatus(ctx, n.id)
		if err != nil {
			t.Fatal(err)
		}
		if !st.GetConnected() || st.GetLastSeq() != uint64(want) {
			t.Fatalf("status of %s: %+v", n.id, st)
		}
		if want := ms[i%3].m.ID(); st.GetStreamMember() != want || at != ms[i%3].gwAddr {
			t.Fatalf("%s stream on %s (%s), want member %s", n.id, st.GetStreamMember(), at, want)
		}
	}

	// Telemetry: batches 1..4 through the node's member, then 3..6 through the next member.
	for i, n := range ns {
		a, d := uploadTelemetry(t, ms[i%3].gwAddr, n.id, 1, 4)
		b, e := uploadTelemetry(t, ms[(i+1)%3].gwAddr, n.id, 3, 6)
		if a != 4 || d != 0 || b != 2 || e != 2 {
			t.Fatalf("%s telemetry: applied %d+%d, duplicates %d+%d", n.id, a, b, d, e)
		}
	}
	check := openStore(t, dsn)
	marks, err := check.Marks()
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, m := range marks {
		if m.Kind == store.KindTelemetry {
			got++
			if m.Seq != 6 {
				t.Fatalf("mark %+v, want 6", m)
			}
		}
	}
	if got != nodes {
		t.Fatalf("%d telemetry marks for %d nodes", got, nodes)
	}
	ids, err := check.NodeIDs()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if len(ids) != nodes {
		t.Fatalf("seq counters for %v", ids)
	}
	for _, id := range ids {
		last, q, err := check.NodeQueue(id)
		if err != nil || last != uint64(want) || len(q) != 0 {
			t.Fatalf("%s: last seq %d, %d still queued (%v): every command reported done must leave the queue", id, last, len(q), err)
		}
	}
}

// TestCrossMemberCommandsTestProvider: three members in one process on protoactor's in-memory provider.
func TestCrossMemberCommandsTestProvider(t *testing.T) {
	skipUnderRace(t)
	agent := cloudcluster.NewTestAgent()
	crossMember(t, 6, func(_ int, st *pgstore.Store) cloudcluster.Config {
		cfg := memberConfig(t, st)
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, agent
		return cfg
	})
}

// TestCrossMemberCommandsEtcd: three members joined through a real etcd, 20 nodes spread over them.
func TestCrossMemberCommandsEtcd(t *testing.T) {
	skipUnderRace(t)
	etcd := testsvc.StartEtcd(t)
	crossMember(t, 20, func(_ int, st *pgstore.Store) cloudcluster.Config {
		cfg := memberConfig(t, st)
		cfg.Provider, cfg.EtcdEndpoints = cloudcluster.ProviderEtcd, []string{etcd.Endpoint}
		return cfg
	})
}
