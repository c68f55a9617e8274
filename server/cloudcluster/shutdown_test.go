package cloudcluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestGracefulMemberShutdown: a member that shuts down drains its gateway (ControlGoaway to its nodes),
// which reconnect to another member; commands issued afterwards on the survivor reach them, continuing the
// same seqs.
func TestGracefulMemberShutdown(t *testing.T) {
	skipUnderRace(t)
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	agent := cloudcluster.NewTestAgent()
	ms := startMembers(t, 2, func(int) cloudcluster.Config {
		cfg := memberConfig(t, openStore(t, dsn))
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, agent
		return cfg
	})
	waitMembers(t, ms, 2)
	addrs := func() []string { return []string{ms[0].gwAddr, ms[1].gwAddr} }
	var ns []*fakeNode
	for i := range 4 {
		ns = append(ns, startNode(t, fmt.Sprintf("g-%d", i), addrs, 0)) // all on member 0
	}
	ctx := context.Background()
	for _, n := range ns {
		n.waitConnected(t, 10*time.Second)
		if _, err := ms[1].m.Issue(ctx, cloudcluster.Command{NodeID: n.id, CommandID: n.id + "-before"}); err != nil {
			t.Fatal(err)
		}
	}
	ms[0].stop(true)
	for _, n := range ns {
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, _, at := n.snapshot(); at == ms[1].gwAddr {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not move to the surviving member", n.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r, err := ms[1].m.Issue(ctx, cloudcluster.Command{NodeID: n.id, CommandID: n.id + "-after"})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSeq() != 2 {
			t.Fatalf("%s: seq %d after the move, want 2", n.id, r.GetSeq())
		}
	}
	for _, n := range ns {
		deadline := time.Now().Add(15 * time.Second)
		for {
			ex, refused, _ := n.snapshot()
			if len(ex) == 2 {
				if ex[0].GetCommandId() != n.id+"-before" || ex[1].GetCommandId() != n.id+"-after" || refused != 0 {
					t.Fatalf("%s executed %v (refused %d)", n.id, ex, refused)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s executed %d of 2", n.id, len(ex))
			}
			time.Sleep(10 * time.Millisecond)
		}
		n.mu.Lock()
		connects := n.connects
		n.mu.Unlock()
		if connects < 2 {
			t.Fatalf("%s connected %d times; the drain should have made it reconnect", n.id, connects)
		}
	}
}
