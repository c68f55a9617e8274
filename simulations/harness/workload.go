package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/simulations/oracle"
)

// poolHost is the pool host of the workload's commands: "<token>.chaos.invalid". Each command sets one
// pool whose URL names the command, so a miner's write log says which command each write carried out.
const poolDomain = ".chaos.invalid"

// workload issues operator commands through the API at a steady rate and records what it was told.
type workload struct {
	c      *cloud
	rng    *rand.Rand
	miners []string
	every  time.Duration
	trial  int64

	mu       sync.Mutex
	n        int
	issued   []oracle.Issued
	acked    []oracle.Acked
	serverID map[string]string // token → the API's command id
	errors   int
}

func newWorkload(c *cloud, miners []string, every time.Duration, seed int64) *workload {
	return &workload{c: c, rng: rand.New(rand.NewPCG(uint64(seed), 0x776f726b)), miners: miners, every: every,
		trial: seed, serverID: map[string]string{}}
}

// run issues commands until ctx ends.
func (w *workload) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.issue(ctx)
		}
	}
}

// token of command n: unique across trials of a run (the seed) and within the trial.
func (w *workload) token(n int) string { return fmt.Sprintf("c%x-%d", uint64(w.trial)&0xffffff, n) }

func (w *workload) issue(ctx context.Context) {
	w.mu.Lock()
	w.n++
	n := w.n
	miner := w.miners[w.rng.IntN(len(w.miners))]
	w.mu.Unlock()
	tok := w.token(n)
	body := map[string]any{"miner_ids": []string{miner}, "action": "update_pools", "idempotency_key": tok,
		"pools": []map[string]any{{"url": "stratum+tcp://" + tok + poolDomain + ":3333", "user": "chaos", "password": "x"}}}
	at := time.Now()
	w.mu.Lock()
	w.issued = append(w.issued, oracle.Issued{CommandID: tok, MinerIDs: []string{miner}, At: at, Action: "update_pools"})
	w.mu.Unlock()
	var res struct {
		CommandID string `json:"command_id"`
	}
	// Retried with the same idempotency key while the cloud is down: the operator's client would.
	for attempt := 0; attempt < 3; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := w.c.do(rctx, "POST", "/api/v1/commands", body, &res)
		cancel()
		if err == nil && st == 202 {
			w.mu.Lock()
			w.acked = append(w.acked, oracle.Acked{CommandID: tok, Outcome: oracle.OutcomeAccepted, At: time.Now()})
			w.serverID[tok] = res.CommandID
			w.mu.Unlock()
			return
		}
		if st >= 400 && st < 500 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	w.mu.Lock()
	w.errors++
	w.mu.Unlock()
}

// finalStatuses are the command statuses that end a command.
var finalStatuses = map[string]bool{"succeeded": true, "failed": true, "partial": true, "timeout": true, "refused": true, "cancelled": true}

// settle polls every accepted command until each reached a final state or timeout passes, and records
// the per-miner outcomes.
func (w *workload) settle(ctx context.Context, timeout time.Duration) (pending int) {
	w.mu.Lock()
	ids := make(map[string]string, len(w.serverID))
	for tok, id := range w.serverID {
		ids[tok] = id
	}
	w.mu.Unlock()
	type view struct {
		Status  string `json:"status"`
		Results []struct {
			MinerID string `json:"miner_id"`
			Status  string `json:"status"`
		} `json:"results"`
	}
	done := map[string]view{}
	deadline := time.Now().Add(timeout)
	for {
		for tok, id := range ids {
			if _, ok := done[tok]; ok {
				continue
			}
			var v view
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := w.c.do(rctx, "GET", "/api/v1/commands/"+id, nil, &v)
			cancel()
			if err == nil && finalStatuses[strings.ToLower(v.Status)] {
				done[tok] = v
			}
		}
		if len(done) == len(ids) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for tok, v := range done {
		for _, r := range v.Results {
			switch strings.ToLower(r.Status) {
			case "succeeded":
				w.acked = append(w.acked, oracle.Acked{CommandID: tok, MinerID: r.MinerID, Outcome: oracle.OutcomeSucceeded, At: now})
			case "pending", "running", "queued", "sent", "":
			default:
				w.acked = append(w.acked, oracle.Acked{CommandID: tok, MinerID: r.MinerID, Outcome: oracle.OutcomeFailed, At: now})
			}
		}
	}
	return len(ids) - len(done)
}

// tokenOf returns the workload or attempt token a pool URL carries ("" for none).
func tokenOf(s string) string {
	i := strings.Index(s, poolDomain)
	if i < 0 {
		return ""
	}
	head := s[:i]
	if j := strings.LastIndex(head, "/"); j >= 0 {
		head = head[j+1:]
	}
	return head
}
