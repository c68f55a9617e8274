package cloudcluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// TestLeaseGrainMembersFromPostgres: Lease grains find their pair's members in the shared store (no
// PairMembers given): a declared pair's member is granted, a stranger and an undeclared pair are denied, and
// a pair declared while the members run is found when its grain activates. Each member also starts its
// history-retention actor on the shared store, which creates today's partitions, and stops it on Stop.
func TestLeaseGrainMembersFromPostgres(t *testing.T) {
	skipUnderRace(t)
	pg := testsvc.SharedPostgres(t)
	st := openPG(t, pg.NewDatabase(t))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutPair(&store.PairRecord{ID: "p1", OrgID: "o", Site: "s", Members: [2]string{"n-x", "n-y"}, Standby: "n-y", Devices: []string{"m1"}}))
	agent := cloudcluster.NewTestAgent()
	ms := startMembers(t, 2, func(int) cloudcluster.Config {
		cfg := cloudcluster.DefaultConfig()
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, agent
		cfg.Port, cfg.Store, cfg.LeaseStore, cfg.Logger = testsvc.FreePort(t), st, st, quiet
		return cfg
	})
	waitMembers(t, ms, 2)
	ctx := context.Background()
	lease := func(m *testMember, pair, node, req string) proto.Message {
		t.Helper()
		res, err := m.m.Lease(ctx, &pb.LeaseRequest{PairId: pair, NodeId: node, Op: pb.LeaseOp_LEASE_OP_ACQUIRE, RequestId: req})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if g, ok := lease(ms[0], "p1", "n-x", "r1").(*pb.LeaseGrant); !ok || g.GetHolder() != "n-x" || g.GetEpoch() != 1 {
		t.Fatalf("declared member: %v", g)
	}
	if d, ok := lease(ms[1], "p1", "n-z", "r2").(*pb.LeaseDenied); !ok {
		t.Fatalf("stranger to p1: %v", d)
	}
	if d, ok := lease(ms[1], "p2", "n-x", "r3").(*pb.LeaseDenied); !ok {
		t.Fatalf("undeclared pair: %v", d)
	}
	must(st.PutPair(&store.PairRecord{ID: "p3", OrgID: "o", Site: "s", Members: [2]string{"n-u", "n-v"}, Standby: "n-v", Devices: []string{"m3"}}))
	if g, ok := lease(ms[1], "p3", "n-v", "r4").(*pb.LeaseGrant); !ok || g.GetHolder() != "n-v" {
		t.Fatalf("pair declared while running: %v", g)
	}
	today := time.Now().UTC()
	want := []string{"telemetry_history_p" + today.Format("20060102"), "telemetry_history_p" + today.AddDate(0, 0, 2).Format("20060102")}
	actortest.Eventually(t, "the members' retention actors to create today's partitions", func() bool {
		parts, err := st.HistoryPartitions()
		return err == nil && slices.Contains(parts, want[0]) && slices.Contains(parts, want[1])
	})
}

// TestClusterMemberExportsRetentionMetrics: `hashfleet server --cluster-etcd … --postgres …` runs the
// retention actor and exports its series on the server's registry.
func TestClusterMemberExportsRetentionMetrics(t *testing.T) {
	skipUnderRace(t)
	etcd := testsvc.StartEtcd(t)
	pg := testsvc.SharedPostgres(t)
	reg := prometheus.NewRegistry()
	o := bootstrap.ClusterOptions{EtcdEndpoints: []string{etcd.Endpoint}, PostgresDSN: pg.NewDatabase(t),
		Listen:     fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)),
		HTTPListen: "127.0.0.1:0", GatewayListen: "off", InsecureLoopback: true, Registry: reg}
	cm, err := bootstrap.StartClusterMember(context.Background(), o, "cluster-member-token-0123456789", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Stop(context.Background())
	actortest.Eventually(t, "the first retention run", func() bool {
		return gatherOne(t, reg, "hashfleet_server_history_retention_last_success_timestamp_seconds") > 0
	})
	// Yesterday (inside the default 24 h retention) through two days ahead.
	if got := gatherOne(t, reg, "hashfleet_server_history_partitions_created_total"); got != 4 {
		t.Fatalf("partitions created: %v, want 4", got)
	}
}
