package harness

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/simulations/oracle"
	"google.golang.org/protobuf/proto"
)

// attacker delivers commands no node may execute, straight onto a node's control stream (the server's
// debug inject), and records them as oracle.Attempts. Each carries a pool URL naming it, so an execution
// shows in the miner's write log.
type attacker struct {
	c     *cloud
	sites []*site
	rng   *rand.Rand
	every time.Duration
	trial int64

	mu       sync.Mutex
	n        int
	attempts []oracle.Attempt
	tokens   map[string]bool
	// revokedID and revoked are a key the org revoked before the schedule started (revokeOldKey); nil:
	// revoked-key attempts fall back to forged ones.
	revokedID string
	revoked   ed25519.PrivateKey
	// progress, when set, receives a line when the key rotation set-up was slow.
	progress func(format string, a ...any)
}

func newAttacker(c *cloud, sites []*site, every time.Duration, seed int64) *attacker {
	return &attacker{c: c, sites: sites, rng: rand.New(rand.NewPCG(uint64(seed), 0x61747461)), every: every, trial: seed,
		tokens: map[string]bool{}}
}

func (a *attacker) run(ctx context.Context) {
	if a.every <= 0 {
		return
	}
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.attempt(ctx)
		}
	}
}

// kinds the attacker draws from, in order.
var attemptKinds = []oracle.AttemptKind{oracle.AttemptForged, oracle.AttemptOutOfOrder, oracle.AttemptWrongNode, oracle.AttemptReplayed,
	oracle.AttemptRevokedKey}

func (a *attacker) attempt(ctx context.Context) {
	a.mu.Lock()
	a.n++
	seq := a.n
	s := a.sites[a.rng.IntN(len(a.sites))]
	n := s.nodes[a.rng.IntN(len(s.nodes))]
	kind := attemptKinds[a.rng.IntN(len(attemptKinds))]
	miners := s.minerIDs()
	miner := miners[a.rng.IntN(len(miners))]
	flip := a.rng.IntN(ed25519.SignatureSize)
	revokedID, revoked := a.revokedID, a.revoked
	a.mu.Unlock()
	if kind == oracle.AttemptRevokedKey && revoked == nil {
		kind = oracle.AttemptForged
	}

	srv := a.c.process()
	np := n.process()
	if srv == nil || np == nil {
		return // nothing to deliver to now
	}
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	g, err := np.Node.Gate(mctx)
	cancel()
	if err != nil || g.SeqMark < 2 {
		return // an old seq must exist for out-of-order and replay; wait for the first commands
	}
	var epoch uint64 // the node's current lease epoch: the attempt must fail on its own fault, not the epoch
	if len(s.nodes) == 2 {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := np.Node.LeaseStatus(lctx)
		cancel()
		if err == nil {
			epoch = st.Lease.Epoch
		}
	}
	tok := fmt.Sprintf("x%x-%d", uint64(a.trial)&0xffffff, seq)
	payload, err := proto.Marshal(&pb.CommandPayload{MinerIds: []string{miner}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS,
		Pools: []*pb.Pool{{Url: "stratum+tcp://" + tok + poolDomain + ":3333", User: "chaos", Password: "x"}}}})
	if err != nil {
		return
	}
	recs := srv.Server.Keys().Export()
	if len(recs) == 0 {
		return
	}
	keyID, priv := recs[len(recs)-1].Key.GetKeyId(), ed25519.NewKeyFromSeed(recs[len(recs)-1].PrivateSeed)
	cmd := &pb.ControlCommand{CommandId: tok, Actor: "user:chaos", NodeId: n.nodeID, IdempotencyKey: tok, Payload: payload, KeyId: keyID,
		LeaseEpoch: epoch}
	detail := ""
	switch kind {
	case oracle.AttemptForged:
		// Fresh seq far above the mark: only the signature is wrong.
		cmd.MonotonicSeq = g.SeqMark + 1_000_000
		if err := signing.Sign(priv, cmd); err != nil {
			return
		}
		cmd.Signature[flip] ^= 0x40
		detail = fmt.Sprintf("signature byte %d flipped", flip)
	case oracle.AttemptOutOfOrder:
		cmd.MonotonicSeq = 1 + uint64(a.rng.IntN(int(g.SeqMark)))
		detail = fmt.Sprintf("seq %d at or below the mark %d", cmd.MonotonicSeq, g.SeqMark)
		if err := signing.Sign(priv, cmd); err != nil {
			return
		}
	case oracle.AttemptReplayed:
		// The same signed command delivered twice with the mark's own seq: authentic, already consumed.
		cmd.MonotonicSeq = g.SeqMark
		detail = fmt.Sprintf("seq %d (the mark) delivered twice", g.SeqMark)
		if err := signing.Sign(priv, cmd); err != nil {
			return
		}
	case oracle.AttemptRevokedKey:
		// Authentic and fresh, but signed by a key the org revoked (and told the nodes about).
		cmd.MonotonicSeq, cmd.KeyId = g.SeqMark+1_000_000, revokedID
		keyID = revokedID
		detail = "signed by revoked key " + revokedID
		if err := signing.Sign(revoked, cmd); err != nil {
			return
		}
	case oracle.AttemptWrongNode:
		cmd.NodeId = "n-chaos-elsewhere"
		cmd.MonotonicSeq = g.SeqMark + 1_000_000
		detail = "signed for another node"
		if err := signing.Sign(priv, cmd); err != nil {
			return
		}
	}
	deliveries := 1
	if kind == oracle.AttemptReplayed {
		// Its first delivery is already forbidden (a consumed seq), so it is judged as out-of-order: no
		// execution at all is allowed, where a replay of a legitimate command may have run once.
		deliveries, kind = 2, oracle.AttemptOutOfOrder
	}
	for range deliveries {
		at := time.Now()
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := srv.Server.Fleet().InjectCommand(ictx, n.nodeID, proto.Clone(cmd).(*pb.ControlCommand))
		cancel()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			continue // not delivered (node between streams): nothing to record
		}
		a.mu.Lock()
		a.tokens[tok] = true
		a.attempts = append(a.attempts, oracle.Attempt{CommandID: tok, Kind: kind, NodeID: n.nodeID, Seq: cmd.GetMonotonicSeq(),
			KeyID: keyID, Epoch: epoch, At: at, Detail: detail})
		a.mu.Unlock()
	}
}

// revokeOldKey rotates the org's command key and revokes the old one through the API, as an operator
// would, and waits until every node consumed both key commands; the attacker then signs revoked-key
// attempts with the old key.
func (a *attacker) revokeOldKey(ctx context.Context, nodes []*siteNode) error {
	srv := a.c.process()
	if srv == nil {
		return errors.New("cloud down")
	}
	recs := srv.Server.Keys().Export()
	if len(recs) == 0 {
		return errors.New("the org has no key")
	}
	old := recs[len(recs)-1]
	marks := map[*siteNode]uint64{}
	for _, n := range nodes {
		if p := n.process(); p != nil {
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			g, err := p.Node.Gate(gctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: gate: %w", n.name, err)
			}
			marks[n] = g.SeqMark
		}
	}
	if _, err := a.c.do(ctx, "POST", "/api/v1/keys/rotate", map[string]any{"overlap_s": 1}, nil); err != nil {
		return err
	}
	if _, err := a.c.do(ctx, "POST", "/api/v1/keys/"+url.PathEscape(old.Key.GetKeyId())+"/revoke", nil, nil); err != nil {
		return err
	}
	newKey := ""
	if recs := srv.Server.Keys().Export(); len(recs) > 0 {
		newKey = recs[len(recs)-1].Key.GetKeyId()
	}
	began := time.Now()
	err := waitUntil(ctx, keyWait, "every node to take the key rotation and revocation", func() bool {
		for n, m := range marks {
			p := n.process()
			if p == nil {
				return false
			}
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			g, err := p.Node.Gate(gctx)
			cancel()
			if err != nil || g.SeqMark < m+2 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w:%s", err, a.keyWaitReport(ctx, marks, newKey, old.Key.GetKeyId()))
	}
	if took := time.Since(began); took > keyWaitSlow && a.progress != nil {
		a.progress("  key rotation set-up took %s", took.Round(time.Millisecond))
	}
	a.mu.Lock()
	a.revokedID, a.revoked = old.Key.GetKeyId(), ed25519.NewKeyFromSeed(old.PrivateSeed)
	a.mu.Unlock()
	return nil
}
