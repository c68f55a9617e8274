package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/simulations/oracle"
)

// localOps is the operator at the site while a node has lost the cloud: every LocalInterval, on each
// running node whose cloud link is down, one command through the node's local path (what its local UI
// calls), with a pool URL naming it like the workload's. A fenced node must refuse it or not write; a
// node in control runs it, and after the WAN heals its audit record must reach the cloud.
type localOps struct {
	t     *trial
	rng   *rand.Rand
	every time.Duration

	mu     sync.Mutex
	n      int
	issued []oracle.Issued
	local  []oracle.LocalAction
}

func newLocalOps(t *trial, every time.Duration, seed int64) *localOps {
	return &localOps{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0x6c6f6361)), every: every}
}

func (l *localOps) run(ctx context.Context) {
	if l.every <= 0 {
		return
	}
	tk := time.NewTicker(l.every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		for _, s := range l.t.sites {
			for _, n := range s.nodes {
				if p := n.process(); p != nil && !n.linkUp() {
					l.submit(ctx, s, n)
				}
			}
		}
	}
}

func (l *localOps) submit(ctx context.Context, s *site, n *siteNode) {
	p := n.process()
	if p == nil {
		return
	}
	l.mu.Lock()
	l.n++
	tok := fmt.Sprintf("l%x-%d", uint64(l.t.cfg.Seed)&0xffffff, l.n)
	miners := s.minerIDs()
	miner := miners[l.rng.IntN(len(miners))]
	at := time.Now()
	l.issued = append(l.issued, oracle.Issued{CommandID: tok, MinerIDs: []string{miner}, At: at, Action: "local update_pools"})
	l.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	id, err := p.Node.SubmitLocal(sctx, gate.LocalSubmit{IdempotencyKey: tok, Actor: "local:chaos", MinerIDs: []string{miner},
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS,
			Pools: []*pb.Pool{{Url: "stratum+tcp://" + tok + poolDomain + ":3333", User: "chaos", Password: "x"}}}})
	if err != nil || id == "" {
		return // refused (a fenced or standby node): nothing may run
	}
	l.mu.Lock()
	l.local = append(l.local, oracle.LocalAction{CommandID: id, NodeID: n.nodeID, MinerID: miner, At: at})
	l.mu.Unlock()
}

// audited returns the command ids in the cloud's audit log of every node.
func (l *localOps) audited(ctx context.Context) []string {
	var out []string
	for _, n := range l.t.nodes() {
		var page struct {
			Records []struct {
				CommandID string `json:"command_id"`
			} `json:"records"`
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.t.cloud.do(rctx, "GET", "/api/v1/nodes/"+n.nodeID+"/audit?limit=10000", nil, &page)
		cancel()
		if err != nil {
			continue
		}
		for _, r := range page.Records {
			out = append(out, r.CommandID)
		}
	}
	return out
}
