package gate

import (
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// epochChecked reports whether a command is subject to Config.EpochCheck: the commands that write to
// miners (a spec naming miners), the ones a warm-standby pair's lease fences. Node-control commands (keys,
// discovery, pairing, site policy, curtailment) carry the node's own epoch and are not checked (docs/GATEWAY.md,
// "Commands for pair devices"); curtailment's miner writes are fenced by the miners' own lease check. An
// unreadable payload is checked (the cautious side: it is refused either way).
func epochChecked(p *pb.CommandPayload, payloadErr error) bool {
	if payloadErr != nil {
		return true
	}
	return p.GetSpec() != nil && len(p.GetMinerIds()) > 0
}

// ErrLeasePending: Config.EpochCheck's answer while this node was just named the lease holder and waits for
// the cloud to confirm it (one round trip): a command of that epoch is held, not refused.
var ErrLeasePending = errors.New("lease being confirmed")

// Holding commands for a lease being confirmed. A node the cloud has just handed the lease to (TRANSFER)
// may write only once its RENEW is granted; commands of the new epoch sent to it meanwhile would otherwise be
// refused FENCED without consuming their seq, and a later command's seq would then overtake theirs. So they
// wait here, in arrival order, and every command arriving behind them waits too (seq order is kept), until
// the lease is confirmed or maxLeaseHold has passed (then they are decided as usual: FENCED).
const (
	maxLeaseHold   = 2 * time.Second
	leaseRetryStep = 20 * time.Millisecond
)

type heldCommand struct {
	cmd     *pb.ControlCommand
	replyTo *actor.PID
	since   time.Time
}

type leaseHold struct {
	cmds  []heldCommand
	timer clock.Timer
	gen   uint64
}

type leaseRetry struct{ gen uint64 }

func (h *leaseHold) stop() {
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	h.gen++
}

// leasePending reports whether cmd must wait for the lease to be confirmed.
func (g *Gate) leasePending(cmd *pb.ControlCommand) bool {
	if g.cfg.EpochCheck == nil {
		return false
	}
	p := &pb.CommandPayload{}
	err := proto.Unmarshal(cmd.GetPayload(), p)
	if !epochChecked(p, err) {
		return false
	}
	return errors.Is(g.cfg.EpochCheck(cmd.GetLeaseEpoch()), ErrLeasePending)
}

// holdForLease queues cmd when commands are already held or the lease is being confirmed; it reports
// whether it did.
func (g *Gate) holdForLease(ctx actor.Context, cmd *pb.ControlCommand, replyTo *actor.PID) bool {
	if len(g.leaseWait.cmds) == 0 && !g.leasePending(cmd) {
		return false
	}
	g.leaseWait.cmds = append(g.leaseWait.cmds, heldCommand{cmd: cmd, replyTo: replyTo, since: g.env.Clock.Now()})
	g.log.Debug("command held until the lease is confirmed", slog.String("command", cmd.GetCommandId()),
		slog.Uint64("seq", cmd.GetMonotonicSeq()), slog.Int("held", len(g.leaseWait.cmds)))
	g.armLeaseRetry(ctx)
	return true
}

func (g *Gate) armLeaseRetry(ctx actor.Context) {
	if g.leaseWait.timer != nil || len(g.leaseWait.cmds) == 0 {
		return
	}
	g.leaseWait.gen++
	g.leaseWait.timer = actors.SendAfter(g.env.Clock, ctx.ActorSystem(), ctx.Self(), leaseRetryStep, leaseRetry{gen: g.leaseWait.gen})
}

// onLeaseRetry decides the held commands in order, as long as the first is no longer waiting.
func (g *Gate) onLeaseRetry(ctx actor.Context, m leaseRetry) {
	if m.gen != g.leaseWait.gen {
		return
	}
	g.leaseWait.timer = nil
	now := g.env.Clock.Now()
	for len(g.leaseWait.cmds) > 0 {
		h := g.leaseWait.cmds[0]
		if now.Sub(h.since) < maxLeaseHold && g.leasePending(h.cmd) {
			break
		}
		g.leaseWait.cmds = g.leaseWait.cmds[1:]
		g.onCommand(ctx, h.cmd, h.replyTo)
	}
	g.armLeaseRetry(ctx)
}
