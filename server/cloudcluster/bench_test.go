package cloudcluster_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// TestClusterThroughput measures commands/s (issued on every member, executed by nodes on every member) and
// telemetry samples/s (one upload stream per node, each batch applied once through the node's grain) with
// 1 and with 3 members on one etcd and one Postgres. Run on demand:
//
//	HASHFLEET_CLUSTER_BENCH=1 go test -run TestClusterThroughput -v -count=1 ./server/cloudcluster
func TestClusterThroughput(t *testing.T) {
	if os.Getenv("HASHFLEET_CLUSTER_BENCH") != "1" {
		t.Skip("set HASHFLEET_CLUSTER_BENCH=1 to measure cluster throughput")
	}
	skipUnderRace(t)
	etcd := testsvc.StartEtcd(t)
	pg := testsvc.SharedPostgres(t)
	for _, members := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", members), func(t *testing.T) {
			dsn := pg.NewDatabase(t)
			ms := startMembers(t, members, func(int) cloudcluster.Config {
				cfg := memberConfig(t, openStore(t, dsn))
				cfg.Provider, cfg.EtcdEndpoints = cloudcluster.ProviderEtcd, []string{etcd.Endpoint}
				cfg.EtcdKeyPrefix = fmt.Sprintf("/bench/%d", members)
				return cfg
			})
			waitMembers(t, ms, members)
			cmds, samples := benchCluster(t, ms)
			t.Logf("BENCH members=%d commands/s=%.0f telemetry_samples/s=%.0f", members, cmds, samples)
		})
	}
}

func benchCluster(t *testing.T, ms []*testMember) (cmdsPerSec, samplesPerSec float64) {
	const nodes, perNode, workers = 30, 40, 24
	const batches, perBatch = 40, 50
	addrs := func() []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.gwAddr)
		}
		return out
	}
	var ns []*fakeNode
	for i := range nodes {
		ns = append(ns, startNode(t, fmt.Sprintf("b-%02d", i), addrs, i%len(ms)))
	}
	for _, n := range ns {
		n.waitConnected(t, 20*time.Second)
	}
	// Commands: workers issue through the members in turn.
	work := make(chan [2]int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range work {
				n := ns[job[0]]
				m := ms[(job[1]+w)%len(ms)].m
				if _, err := m.Issue(context.Background(), cloudcluster.Command{NodeID: n.id, CommandID: fmt.Sprintf("%s-%d", n.id, job[1])}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for k := range perNode {
		for i := range nodes {
			work <- [2]int{i, k}
		}
	}
	close(work)
	wg.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range ns {
		for {
			ex, _, _ := n.snapshot()
			if len(ex) >= perNode {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s executed %d of %d", n.id, len(ex), perNode)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cmdsPerSec = float64(nodes*perNode) / time.Since(start).Seconds()
	if failed.Load() > 0 {
		t.Fatalf("%d issues failed", failed.Load())
	}

	// Telemetry: one upload stream per node, to the member its control stream is on.
	start = time.Now()
	var twg sync.WaitGroup
	for i, n := range ns {
		twg.Add(1)
		go func() {
			defer twg.Done()
			conn, err := grpc.NewClient(ms[i%len(ms)].gwAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			ctx := metadata.AppendToOutgoingContext(context.Background(), gateway.MetadataNode, n.id)
			us, err := pb.NewGatewayClient(conn).UploadTelemetry(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			for s := 1; s <= batches; s++ {
				b := &pb.TelemetryBatch{NodeId: n.id, BatchSeq: uint64(s)}
				for k := range perBatch {
					b.Samples = append(b.Samples, &pb.Telemetry{MinerId: fmt.Sprintf("%s-m%03d", n.id, k), ObservedAtUnixMs: int64(s) * 1000})
				}
				if err := us.Send(b); err != nil {
					t.Error(err)
					return
				}
				ack, err := us.Recv()
				if err != nil || ack.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
					t.Errorf("batch %d: %v %v", s, ack, err)
					return
				}
			}
			_ = us.CloseSend()
		}()
	}
	twg.Wait()
	samplesPerSec = float64(nodes*batches*perBatch) / time.Since(start).Seconds()
	return cmdsPerSec, samplesPerSec
}
