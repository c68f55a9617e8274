package cloudcluster_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestOrgCommandScale measures one org command to many miners on three members (in-process, one
// Postgres): the time until the command is recorded and every part queued (the POST's answer), and until
// every miner's final result is in the store, read on another member. Every miner's result passes through
// its own Miner grain (activation, one row write). Run on demand:
//
//	HASHFLEET_CLUSTER_BENCH=1 go test -run TestOrgCommandScale -v -count=1 ./server/cloudcluster
func TestOrgCommandScale(t *testing.T) {
	if os.Getenv("HASHFLEET_CLUSTER_BENCH") != "1" {
		t.Skip("set HASHFLEET_CLUSTER_BENCH=1 to measure an org command to thousands of miners")
	}
	skipUnderRace(t)
	for _, size := range []struct{ nodes, miners int }{{10, 100}, {10, 500}} {
		t.Run(fmt.Sprintf("miners=%d", size.nodes*size.miners), func(t *testing.T) {
			c := startOrgCluster(t, orgClusterOpts{members: 3, nodes: size.nodes, miners: size.miners})
			miners := c.miners()
			start := time.Now()
			var first issueAnswer
			if code := call(t, "POST", c.http[0]+"/cluster/v1/orgs/org-a/commands", orgToken, issueBody("scale", "reboot", miners), &first); code != http.StatusAccepted {
				t.Fatalf("issue: %d %+v", code, first)
			}
			queued := time.Since(start)
			got := waitCommand(t, c.http[2], first.CommandID, 5*time.Minute, func(c commandAnswer) bool { return c.Status == "succeeded" })
			done := time.Since(start)
			checkEveryMinerOnce(t, got, miners, "succeeded")
			t.Logf("BENCH miners=%d nodes=%d queued_ms=%d all_final_ms=%d miner_results/s=%.0f", len(miners), size.nodes,
				queued.Milliseconds(), done.Milliseconds(), float64(len(miners))/done.Seconds())
		})
	}
}
