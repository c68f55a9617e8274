package telemetry

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/uplink"
)

// SeqReserver hands out batch seqs that never repeat across restarts (the node store implements it).
type SeqReserver interface {
	ReserveBatchSeqs(kind string, n uint64) (first uint64, err error)
}

// Env is what the batcher is wired to.
type Env struct {
	NodeID string
	Clock  clock.Clock
	// Outbox holds batches until acked; nil uses a MemoryOutbox bounded by Config.
	Outbox Outbox
	// Seqs reserves batch seqs; nil counts from 1 in memory (tests only: the cloud would drop a restarted
	// node's batches as duplicates).
	Seqs         SeqReserver
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// Props returns the TelemetryBatcher's props (kind "telemetry-batcher").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Outbox == nil {
		env.Outbox = NewMemoryOutbox(cfg.MaxBacklogSamples, cfg.MaxBacklogEvents)
	}
	return actors.Props("telemetry-batcher", env.ActorMetrics, func() actor.Actor { return newBatcher(cfg, env) })
}

// Batcher is the TelemetryBatcher actor.
type Batcher struct {
	cfg Config
	env Env
	log *slog.Logger

	samples []*pb.Telemetry
	events  []*pb.Event
	timer   clock.Timer
	gen     uint64

	up      bool
	session uint64
	uplink  *actor.PID
	lanes   [numKinds]lane
	pace    [numKinds]pacer
	paceT   [numKinds]clock.Timer
}

// lane is the send window and seq block of one stream kind.
type lane struct {
	sentUpTo uint64
	inflight map[uint64]struct{}
	next     uint64 // next seq to use
	end      uint64 // first seq not reserved
}

func newBatcher(cfg Config, env Env) *Batcher {
	b := &Batcher{cfg: cfg, env: env, log: env.Logger.With(slog.String("node", env.NodeID))}
	for k := range b.lanes {
		b.lanes[k].inflight = map[uint64]struct{}{}
		b.pace[k] = newPacer(cfg.ReplayRate)
	}
	return b
}

// Receive dispatches each message to its handler.
func (b *Batcher) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *pb.Telemetry:
		b.onSample(ctx, msg)
	case *pb.Event:
		b.onEvent(ctx, msg)
	case flushTick:
		if msg.gen == b.gen {
			b.timer = nil
			b.flush(ctx)
		}
	case *Flush:
		b.flush(ctx)
	case paceTick:
		b.paceT[msg.kind] = nil
		b.pump(ctx, msg.kind)
	case *uplink.LinkChanged:
		b.onLinkChanged(ctx, msg)
	case *uplink.Acked:
		b.onAcked(ctx, msg)
	case *StatusRequest:
		ctx.Respond(b.status())
	case *actor.Started:
	case *actor.Stopping, *actor.Restarting:
		if _, stopping := msg.(*actor.Stopping); stopping {
			// A graceful stop: what waits for its batch goes to the outbox (the spool keeps it for the next
			// start), not nowhere. Nothing more is sent to the uplink.
			b.up = false
			b.flush(ctx)
		}
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		for k, t := range b.paceT {
			if t != nil {
				t.Stop()
				b.paceT[k] = nil
			}
		}
	case *actor.Stopped:
	default:
		b.log.Warn("telemetry batcher: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (b *Batcher) onSample(ctx actor.Context, s *pb.Telemetry) {
	b.samples = append(b.samples, s)
	if len(b.samples) >= b.cfg.BatchSize {
		b.closeBatch(ctx, KindTelemetry)
	}
	b.armTimer(ctx)
}

func (b *Batcher) onEvent(ctx actor.Context, e *pb.Event) {
	b.events = append(b.events, e)
	if len(b.events) >= b.cfg.EventBatchSize {
		b.closeBatch(ctx, KindEvents)
	}
	b.armTimer(ctx)
}

// armTimer starts the time bound when something waits and no timer runs; the timer closes whatever is open
// when it fires, so no sample waits longer than FlushInterval.
func (b *Batcher) armTimer(ctx actor.Context) {
	if b.timer != nil || (len(b.samples) == 0 && len(b.events) == 0) {
		return
	}
	b.gen++
	b.timer = actors.SendAfter(b.env.Clock, ctx.ActorSystem(), ctx.Self(), b.cfg.FlushInterval, flushTick{gen: b.gen})
}

func (b *Batcher) flush(ctx actor.Context) {
	if len(b.samples) > 0 {
		b.closeBatch(ctx, KindTelemetry)
	}
	if len(b.events) > 0 {
		b.closeBatch(ctx, KindEvents)
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

func (b *Batcher) seq(k Kind) uint64 {
	l := &b.lanes[k]
	if l.next == l.end {
		if b.env.Seqs == nil {
			if l.next == 0 {
				l.next = 1
			}
			l.end = l.next + b.cfg.SeqBlock
		} else if first, err := b.env.Seqs.ReserveBatchSeqs(k.String(), b.cfg.SeqBlock); err != nil {
			// Keep counting past the last reserved block: the seqs stay increasing in this process; only a
			// restart before the store recovers could repeat them.
			b.log.Error("cannot reserve batch seqs; continuing unreserved", slog.String("kind", k.String()), slog.Any("error", err))
			l.end = l.next + 1
		} else {
			l.next, l.end = max(first, l.next), first+b.cfg.SeqBlock
		}
	}
	s := l.next
	l.next++
	return s
}

func (b *Batcher) closeBatch(ctx actor.Context, k Kind) {
	batch := Batch{Kind: k, Seq: b.seq(k)}
	if k == KindTelemetry {
		batch.Telemetry = &pb.TelemetryBatch{NodeId: b.env.NodeID, BatchSeq: batch.Seq, Samples: b.samples}
		b.samples = nil
	} else {
		batch.Events = &pb.EventBatch{NodeId: b.env.NodeID, BatchSeq: batch.Seq, Events: b.events}
		b.events = nil
	}
	_, before := b.env.Outbox.Len(k)
	dropped, err := b.env.Outbox.Append(batch)
	if err != nil {
		b.log.Error("outbox append failed; batch lost", slog.String("kind", k.String()), slog.Uint64("seq", batch.Seq), slog.Any("error", err))
		b.env.Metrics.batch(k, "dropped")
		return
	}
	b.env.Metrics.batch(k, "created")
	_, after := b.env.Outbox.Len(k)
	if len(dropped) > 0 {
		lost := before + batch.Items() - after
		b.env.Metrics.drop(k, lost)
		b.log.Warn("outbox over its bound; oldest batches dropped", slog.String("kind", k.String()),
			slog.Int("batches", len(dropped)), slog.Int("items", lost), slog.Any("error", ErrOutboxFull))
		for _, s := range dropped {
			delete(b.lanes[k].inflight, s)
		}
	}
	b.env.Metrics.setBacklog(k, after)
	b.pump(ctx, k)
}

// pump sends batches after the window's last sent seq until MaxInFlight are unacked, at most ReplayRate items
// per second (a paceTick resumes it).
func (b *Batcher) pump(ctx actor.Context, k Kind) {
	if !b.up || b.uplink == nil {
		return
	}
	l := &b.lanes[k]
	for len(l.inflight) < b.cfg.MaxInFlight {
		batch, ok, err := b.env.Outbox.Next(k, l.sentUpTo)
		if err != nil {
			b.log.Error("outbox read failed", slog.String("kind", k.String()), slog.Any("error", err))
			return
		}
		if !ok {
			return
		}
		if wait := b.pace[k].reserve(batch.Items(), b.env.Clock.Now()); wait > 0 {
			if b.paceT[k] == nil {
				b.paceT[k] = actors.SendAfter(b.env.Clock, ctx.ActorSystem(), ctx.Self(), wait, paceTick{kind: k})
			}
			return
		}
		switch {
		case k == KindTelemetry && batch.Encoded != nil:
			ctx.Send(b.uplink, &uplink.EncodedTelemetryBatch{Batch: batch.Telemetry, Wire: batch.Encoded})
		case k == KindTelemetry:
			ctx.Send(b.uplink, batch.Telemetry)
		default:
			ctx.Send(b.uplink, batch.Events)
		}
		b.env.Metrics.batch(k, "sent")
		l.sentUpTo = batch.Seq
		l.inflight[batch.Seq] = struct{}{}
	}
}

func (b *Batcher) onLinkChanged(ctx actor.Context, m *uplink.LinkChanged) {
	wasUp, prev := b.up, b.session
	b.up = m.Up
	if m.Uplink != nil {
		b.uplink = m.Uplink
	}
	if !m.Up || (wasUp && m.Session == prev) {
		return // down, or the heartbeat's re-announcement of the session we know
	}
	b.session = m.Session
	// A new session: everything unacked is sent again from the oldest.
	for k := range b.lanes {
		b.lanes[k].sentUpTo = 0
		clear(b.lanes[k].inflight)
	}
	tb, ts := b.env.Outbox.Len(KindTelemetry)
	if eb, es := b.env.Outbox.Len(KindEvents); tb+eb > 0 {
		// The spool logs the replay's progress as acks come in; this says where it starts.
		b.log.Info("link up: replaying the outbox", slog.Int("telemetry_batches", tb), slog.Int("samples", ts),
			slog.Int("event_batches", eb), slog.Int("events", es), slog.Int("items_per_s", b.cfg.ReplayRate))
	}
	b.pump(ctx, KindTelemetry)
	b.pump(ctx, KindEvents)
}

func (b *Batcher) onAcked(ctx actor.Context, a *uplink.Acked) {
	k := KindTelemetry
	switch a.Stream {
	case uplink.StreamTelemetry:
	case uplink.StreamEvents:
		k = KindEvents
	default:
		return
	}
	if a.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		// The cloud read the batch and will not apply it; sending it again would get the same answer.
		b.log.Warn("cloud refused a batch; dropping it", slog.String("kind", k.String()), slog.Uint64("seq", a.Seq),
			slog.String("code", a.Code.String()), slog.String("message", a.Message))
		b.env.Metrics.batch(k, "refused")
	}
	ok, err := b.env.Outbox.Ack(k, a.Seq)
	if err != nil {
		b.log.Error("outbox ack failed", slog.String("kind", k.String()), slog.Uint64("seq", a.Seq), slog.Any("error", err))
	}
	if ok && a.Code == pb.ResultCode_RESULT_CODE_SUCCEEDED {
		b.env.Metrics.batch(k, "acked")
	}
	delete(b.lanes[k].inflight, a.Seq)
	_, items := b.env.Outbox.Len(k)
	b.env.Metrics.setBacklog(k, items)
	b.pump(ctx, k)
}

func (b *Batcher) status() Status {
	tb, ts := b.env.Outbox.Len(KindTelemetry)
	eb, es := b.env.Outbox.Len(KindEvents)
	return Status{
		LinkUp: b.up, PendingSamples: len(b.samples), PendingEvents: len(b.events),
		BacklogTelemetryBatches: tb, BacklogSamples: ts, BacklogEventBatches: eb, BacklogEvents: es,
		InFlightTelemetry: len(b.lanes[KindTelemetry].inflight), InFlightEvents: len(b.lanes[KindEvents].inflight),
	}
}
