package cloudcluster_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"go.uber.org/goleak"
)

// TestMain runs the tests on one shared PostgreSQL server (each test makes its own database), stops it,
// and checks that members stop every goroutine of ours. Besides actortest's dead-letter throttle,
// protoactor's cluster leaves three kinds behind that no API stops (pinned version):
//   - the gossiper's and gossip actor's log throttles (NewThrottle / NewThrottleWithLogger): a goroutine per
//     throttled period waiting on a ticker, as the dead-letter one;
//   - the test provider's TTL reporter (test.(*Provider).startTtlReport): it ranges over a ticker's channel,
//     which Ticker.Stop never closes;
//   - a remote endpoint's reader (remote.(*endpointWriter).initializeInternal.func1) whose peer member shut
//     down at the same moment as its own: it publishes EndpointTerminatedEvent into its stopped system.
func TestMain(m *testing.M) {
	if os.Getenv(envMemberProcess) != "" {
		os.Exit(memberProcessMain())
	}
	opts := append(actortest.LeakOptions(),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initializeInternal.func1"),
	)
	code := m.Run()
	testsvc.StopShared()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// skipUnderRace skips tests that run protoactor cluster members under the race detector: protoactor's own
// cluster code races with itself (remote.BlockList read by the etcd watcher while the gossip actor writes
// it, the informer's shared math/rand source, grpclog.SetLoggerV2 on every remote.Start), which the detector
// reports whatever this package does. Our own lease actors run under -race without the cluster in
// pgstore's TestTwoActivationsOneEpoch.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("protoactor cluster internals race under -race (BlockList, informer rand, grpclog); run this test without -race")
	}
}
