package uplink

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Env is what the Uplink is wired to.
type Env struct {
	// LastSeq returns the gate's persisted high-water mark for the hello; nil sends 0.
	LastSeq func() (uint64, error)
	// LeaseEpoch returns the node's lease epoch for hello and heartbeats; nil sends 0.
	LeaseEpoch func() uint64
	// Gate receives every ControlCommand (as a request; it answers the Uplink).
	Gate *actor.PID
	// Lease receives every *pb.LeaseGrant and *pb.LeaseDenied (the node's pair wiring, which hands them to its
	// LeaseHolder); nil drops them: the node is not built for pairs.
	Lease *actor.PID
	// GossipAddr returns the host:port this node's pair gossip listens on, for the hello; nil or "" sends
	// none.
	GossipAddr func() string
	// HelloAckTo receive every HelloAck (the ownership map).
	HelloAckTo []*actor.PID
	// Subscribers receive LinkChanged and Acked.
	Subscribers  []*actor.PID
	Clock        clock.Clock
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
	// Seed seeds the jitter; 0 uses a random seed.
	Seed uint64
}

// Props returns the Uplink's props (kind "uplink").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Seed == 0 {
		env.Seed = mrand.Uint64()
	}
	return actors.Props("uplink", env.ActorMetrics, func() actor.Actor { return newUplink(cfg, env) })
}

type linkState int

const (
	stateDown linkState = iota
	stateConnecting
	stateUp
)

// Uplink is the Uplink actor.
type Uplink struct {
	cfg Config
	env Env
	log *slog.Logger
	rnd *mrand.Rand
	wg  sync.WaitGroup // every goroutine the actor started

	state      linkState
	gen        uint64
	sess       *session
	since      time.Time
	upSince    time.Time
	lastErr    string
	attempts   int
	retryAt    time.Time
	retry      clock.Timer
	hb         clock.Timer
	lastPong   time.Time
	cred       Credential  // the session token of the current connection (Authorize)
	refresh    clock.Timer // fires when cred should be refreshed
	refreshing bool

	pending           []*pb.NodeToCloud // acks and results waiting for the link
	recent            []sentResult      // results written on the current session
	connects, goaways uint64
	stopped           bool
}

// Internal messages.
type connectTick struct{ gen uint64 }
type connected struct {
	gen  uint64
	sess *session
}
type connectFailed struct {
	gen uint64
	err error
}
type heartbeatTick struct{ gen uint64 }
type refreshTick struct{ gen uint64 }
type refreshed struct {
	gen  uint64
	cred Credential
	err  error
}

func newUplink(cfg Config, env Env) *Uplink {
	return &Uplink{cfg: cfg, env: env, rnd: mrand.New(mrand.NewPCG(env.Seed, 0x5eed)),
		log: env.Logger.With(slog.String("node", cfg.NodeID))}
}

// Receive dispatches each message to its handler.
func (u *Uplink) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		u.since = u.env.Clock.Now()
		u.scheduleConnect(ctx, 0)
	case connectTick:
		u.onConnectTick(ctx, msg)
	case *connected:
		u.onConnected(ctx, msg)
	case *connectFailed:
		u.onConnectFailed(ctx, msg)
	case *sessionEvent:
		u.onSessionEvent(ctx, msg)
	case heartbeatTick:
		u.onHeartbeatTick(ctx, msg)
	case refreshTick:
		u.onRefreshTick(ctx, msg)
	case *refreshed:
		u.onRefreshed(ctx, msg)
	case *pb.TelemetryBatch:
		u.onTelemetryBatch(ctx, msg)
	case *EncodedTelemetryBatch:
		u.onEncodedTelemetryBatch(ctx, msg)
	case *pb.EventBatch:
		u.onEventBatch(ctx, msg)
	case *pb.CommandAck:
		u.sendControl(ctx, &pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: msg}})
	case *pb.CommandResultReport:
		u.sendControl(ctx, &pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: msg}})
	case *pb.LeaseRequest:
		u.onLeaseRequest(ctx, msg)
	case *StatusRequest:
		ctx.Respond(u.status())
	case *actor.Stopping, *actor.Restarting:
		u.onStopping()
	case *actor.Stopped:
	default:
		u.log.Warn("uplink: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

// post returns a function goroutines use to deliver messages to this actor.
func post(ctx actor.Context) func(any) {
	sys, self := ctx.ActorSystem(), ctx.Self()
	return func(m any) { sys.Root.Send(self, m) }
}

func (u *Uplink) scheduleConnect(ctx actor.Context, d time.Duration) {
	if u.retry != nil {
		u.retry.Stop()
	}
	u.gen++
	u.retry = nil
	u.retryAt = u.env.Clock.Now().Add(d)
	if d <= 0 {
		ctx.Send(ctx.Self(), connectTick{gen: u.gen})
		return
	}
	u.retry = actors.SendAfter(u.env.Clock, ctx.ActorSystem(), ctx.Self(), d, connectTick{gen: u.gen})
}

func (u *Uplink) onConnectTick(ctx actor.Context, t connectTick) {
	if t.gen != u.gen || u.state != stateDown || u.stopped {
		return
	}
	u.retry, u.retryAt = nil, time.Time{}
	u.state = stateConnecting
	var last uint64
	if u.env.LastSeq != nil {
		seq, err := u.env.LastSeq()
		if err != nil {
			u.log.Error("cannot read the seq high-water mark for the hello; sending 0", slog.Any("error", err))
		}
		last = seq
	}
	hello := &pb.ControlHello{NodeId: u.cfg.NodeID, Standby: u.cfg.Standby, LastSeq: last,
		LeaseEpoch: u.epoch(), SoftwareVersion: u.cfg.SoftwareVersion, SessionToken: u.token(), GossipAddr: u.gossipAddr(),
		MinerSigningPublicKey: u.cfg.MinerKey, MinerSigningKeySignature: u.cfg.MinerKeySignature}
	sess := newSession(u.gen, u.cfg.SendQueue)
	u.sess = sess
	cfg, send := u.cfg, post(ctx)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		if err := sess.open(cfg, hello); err != nil {
			sess.close()
			send(&connectFailed{gen: sess.gen, err: err})
			return
		}
		send(&connected{gen: sess.gen, sess: sess})
	}()
}

func (u *Uplink) gossipAddr() string {
	if u.env.GossipAddr == nil {
		return ""
	}
	return u.env.GossipAddr()
}

// onLeaseRequest sends a lease request on the control stream. Unlike acks and results it is never kept for
// the next session: a lease request is only meaningful now (its sender times it from the moment it was
// sent), and the LeaseHolder asks again when the link is back.
func (u *Uplink) onLeaseRequest(ctx actor.Context, r *pb.LeaseRequest) {
	if u.state != stateUp {
		u.log.Debug("lease request dropped: the link is down", slog.String("op", r.GetOp().String()))
		return
	}
	if !trySend(u.sess.controlOut, &pb.NodeToCloud{Msg: &pb.NodeToCloud_LeaseRequest{LeaseRequest: r}}) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: control", ErrStalled), -1)
	}
}

func (u *Uplink) toLease(ctx actor.Context, m any) {
	if u.env.Lease == nil {
		u.log.Debug("lease message ignored: this node is not built for pairs", slog.String("type", fmt.Sprintf("%T", m)))
		return
	}
	ctx.Send(u.env.Lease, m)
}

func (u *Uplink) epoch() uint64 {
	if u.env.LeaseEpoch == nil {
		return 0
	}
	return u.env.LeaseEpoch()
}

func (u *Uplink) token() string {
	if u.cfg.Authorize != nil {
		return u.cred.Token
	}
	if u.cfg.SessionToken == nil {
		return ""
	}
	return u.cfg.SessionToken()
}

// scheduleRefresh arms the session refresh at RefreshAt of the time left on the current credential.
func (u *Uplink) scheduleRefresh(ctx actor.Context, retry bool) {
	if u.cfg.Authorize == nil || u.cred.Expires.IsZero() {
		return
	}
	if u.refresh != nil {
		u.refresh.Stop()
	}
	left := u.cred.Expires.Sub(u.env.Clock.Now())
	d := time.Duration(float64(left) * u.cfg.RefreshAt)
	if retry {
		// A failed refresh is retried a few times before the session runs out (the cloud then ends the
		// streams and the node reconnects with a new session).
		d = min(max(left/4, time.Second), 30*time.Second)
	}
	u.refresh = actors.SendAfter(u.env.Clock, ctx.ActorSystem(), ctx.Self(), max(d, 0), refreshTick{gen: u.gen})
}

func (u *Uplink) onRefreshTick(ctx actor.Context, t refreshTick) {
	if t.gen != u.gen || u.state != stateUp || u.refreshing {
		return
	}
	u.refreshing = true
	sess, authorize, send := u.sess, u.cfg.Authorize, post(ctx)
	timeout := u.cfg.HandshakeTimeout
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		rctx, cancel := context.WithTimeout(sess.ctx, timeout)
		defer cancel()
		cred, err := authorize(rctx, sess.conn)
		send(&refreshed{gen: sess.gen, cred: cred, err: err})
	}()
}

func (u *Uplink) onRefreshed(ctx actor.Context, r *refreshed) {
	if r.gen != u.gen {
		return
	}
	u.refreshing = false
	if u.state != stateUp {
		return
	}
	if r.err != nil {
		u.env.Metrics.attempt("refresh_failed")
		u.log.Warn("cannot refresh the session; retrying", slog.Any("error", r.err), slog.Time("expires", u.cred.Expires))
		u.scheduleRefresh(ctx, true)
		return
	}
	u.cred = r.cred
	u.log.Debug("session refreshed", slog.Time("expires", r.cred.Expires))
	// The new token reaches the cloud with the next heartbeat; send one now so it does not wait.
	ping := &pb.HeartbeatPing{NodeId: u.cfg.NodeID, SentAtUnixMs: u.env.Clock.Now().UnixMilli(), LeaseEpoch: u.epoch(), SessionToken: u.token()}
	if !trySend(u.sess.heartbeatOut, ping) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: heartbeat", ErrStalled), -1)
		return
	}
	u.scheduleRefresh(ctx, false)
}

func (u *Uplink) onConnectFailed(ctx actor.Context, f *connectFailed) {
	if f.gen != u.gen || u.state != stateConnecting {
		return
	}
	u.sess = nil
	u.state = stateDown
	u.lastErr = f.err.Error()
	u.env.Metrics.attempt("failed")
	delay, next := u.cfg.Backoff.Next(u.attempts, 0, u.rnd.Float64())
	u.attempts = next
	u.log.Warn("cannot connect to the cloud", slog.Any("error", f.err), slog.Int("attempt", next), slog.Duration("retry_in", delay))
	u.scheduleConnect(ctx, delay)
}

func (u *Uplink) onConnected(ctx actor.Context, c *connected) {
	if c.gen != u.gen || u.state != stateConnecting || u.stopped {
		// A session nobody wants any more (stop or restart raced the handshake).
		u.closeAsync(c.sess)
		return
	}
	now := u.env.Clock.Now()
	u.state, u.since, u.upSince, u.lastPong, u.lastErr = stateUp, now, now, now, ""
	u.cred = c.sess.cred
	u.scheduleRefresh(ctx, false)
	u.connects++
	u.env.Metrics.attempt("connected")
	u.env.Metrics.setUp(true)
	u.log.Info("link to the cloud up", slog.Uint64("session", c.gen), slog.Int("devices", len(c.sess.ack.GetDevices())))
	send := post(ctx)
	c.sess.run(func(ev *sessionEvent) { send(ev) })

	for _, pid := range u.env.HelloAckTo {
		ctx.Send(pid, c.sess.ack)
	}
	u.announce(ctx)
	// What waited for the link goes out first, in order.
	pending := u.pending
	u.pending = nil
	for _, m := range pending {
		u.sendControl(ctx, m)
	}
	u.env.Metrics.setPending(len(u.pending))
	u.hb = actors.SendAfter(u.env.Clock, ctx.ActorSystem(), ctx.Self(), u.cfg.HeartbeatInterval, heartbeatTick{gen: u.gen})
}

func (u *Uplink) announce(ctx actor.Context) {
	m := &LinkChanged{Up: u.state == stateUp, Since: u.since, Uplink: ctx.Self(), Session: u.gen, Reason: u.lastErr}
	for _, pid := range u.env.Subscribers {
		ctx.Send(pid, m)
	}
}

func (u *Uplink) onSessionEvent(ctx actor.Context, ev *sessionEvent) {
	if ev.gen != u.gen || u.state != stateUp {
		return
	}
	switch {
	case ev.err != nil:
		u.drop(ctx, "stream_error", ev.err, -1)
	case ev.control != nil:
		u.onControl(ctx, ev.control)
	case ev.ack != nil:
		a := &Acked{Stream: ev.stream, Seq: ev.ack.GetBatchSeq(), Code: ev.ack.GetCode(), Message: ev.ack.GetMessage()}
		for _, pid := range u.env.Subscribers {
			ctx.Send(pid, a)
		}
	case ev.pong != nil:
		u.lastPong = u.env.Clock.Now()
	}
}

func (u *Uplink) onControl(ctx actor.Context, m *pb.CloudToNode) {
	switch x := m.GetMsg().(type) {
	case *pb.CloudToNode_Command:
		if u.env.Gate == nil {
			u.log.Error("command received but no gate is wired; dropped", slog.String("command", x.Command.GetCommandId()))
			return
		}
		ctx.Request(u.env.Gate, x.Command)
	case *pb.CloudToNode_Goaway:
		u.goaways++
		after := time.Duration(x.Goaway.GetReconnectAfterMs()) * time.Millisecond
		u.log.Info("cloud sent goaway", slog.String("reason", x.Goaway.GetReason()), slog.Duration("reconnect_after", after))
		u.drop(ctx, "goaway", fmt.Errorf("%w: %s", ErrGoaway, x.Goaway.GetReason()), u.cfg.Backoff.GoawayDelay(after, u.rnd.Float64()))
	case *pb.CloudToNode_HelloAck:
		for _, pid := range u.env.HelloAckTo {
			ctx.Send(pid, x.HelloAck)
		}
	case *pb.CloudToNode_LeaseGrant:
		u.toLease(ctx, x.LeaseGrant)
	case *pb.CloudToNode_LeaseDenied:
		u.toLease(ctx, x.LeaseDenied)
	default:
		u.log.Warn("uplink: unexpected control message", slog.String("type", fmt.Sprintf("%T", x)))
	}
}

func (u *Uplink) onHeartbeatTick(ctx actor.Context, t heartbeatTick) {
	if t.gen != u.gen || u.state != stateUp {
		return
	}
	now := u.env.Clock.Now()
	if silent := now.Sub(u.lastPong); silent >= time.Duration(u.cfg.HeartbeatMisses)*u.cfg.HeartbeatInterval {
		u.drop(ctx, "heartbeat", fmt.Errorf("%w: no pong for %s", ErrHeartbeat, silent), -1)
		return
	}
	ping := &pb.HeartbeatPing{NodeId: u.cfg.NodeID, SentAtUnixMs: now.UnixMilli(), LeaseEpoch: u.epoch(), SessionToken: u.token()}
	if !trySend(u.sess.heartbeatOut, ping) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: heartbeat", ErrStalled), -1)
		return
	}
	u.announce(ctx)
	u.hb = actors.SendAfter(u.env.Clock, ctx.ActorSystem(), ctx.Self(), u.cfg.HeartbeatInterval, heartbeatTick{gen: u.gen})
}

func trySend[T any](ch chan<- T, m T) bool {
	select {
	case ch <- m:
		return true
	default:
		return false
	}
}

func (u *Uplink) onTelemetryBatch(ctx actor.Context, b *pb.TelemetryBatch) {
	if u.state != stateUp {
		return // the batcher keeps it and re-sends after LinkChanged{Up}
	}
	if tok := u.token(); tok != "" && b.SessionToken != tok {
		// The batch stays in the batcher's outbox and may be re-sent: never modify it, send a copy.
		b = &pb.TelemetryBatch{NodeId: b.NodeId, BatchSeq: b.BatchSeq, Samples: b.Samples, SessionToken: tok}
	}
	if !trySend(u.sess.telemetryOut, &telemetryFrame{batch: b}) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: telemetry", ErrStalled), -1)
	}
}

// onEncodedTelemetryBatch sends a batch whose encoding the sender kept, without encoding it again.
func (u *Uplink) onEncodedTelemetryBatch(ctx actor.Context, m *EncodedTelemetryBatch) {
	if m.Wire == nil {
		u.onTelemetryBatch(ctx, m.Batch)
		return
	}
	if u.state != stateUp {
		return
	}
	f := &telemetryFrame{wire: m.Wire}
	if tok := u.token(); tok != "" && m.Batch.GetSessionToken() != tok {
		f = ptr(withSessionToken(m.Batch, m.Wire, tok))
	}
	if !trySend(u.sess.telemetryOut, f) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: telemetry", ErrStalled), -1)
	}
}

func (u *Uplink) onEventBatch(ctx actor.Context, b *pb.EventBatch) {
	if u.state != stateUp {
		return
	}
	if tok := u.token(); tok != "" && b.SessionToken != tok {
		b = &pb.EventBatch{NodeId: b.NodeId, BatchSeq: b.BatchSeq, Events: b.Events, SessionToken: tok}
	}
	if !trySend(u.sess.eventsOut, b) {
		u.drop(ctx, "stalled", fmt.Errorf("%w: events", ErrStalled), -1)
	}
}

// sendControl writes an ack or result on the control stream, or keeps it until the link is up.
func (u *Uplink) sendControl(ctx actor.Context, m *pb.NodeToCloud) {
	if u.state != stateUp {
		u.keep(m)
		return
	}
	if m.GetResult() != nil {
		u.recent = append(u.recent, sentResult{msg: m, at: u.env.Clock.Now()})
		u.trimRecent()
	}
	if !trySend(u.sess.controlOut, m) {
		if m.GetResult() == nil {
			u.keep(m)
		}
		u.drop(ctx, "stalled", fmt.Errorf("%w: control", ErrStalled), -1)
	}
}

func (u *Uplink) keep(m *pb.NodeToCloud) {
	u.pending = append(u.pending, m)
	if over := len(u.pending) - u.cfg.MaxPendingResults; over > 0 {
		// Acks go first: a result is worth more, and a lost ack is re-created by the cloud re-sending the command.
		kept := u.pending[:0]
		for _, p := range u.pending {
			if over > 0 && p.GetAck() != nil {
				over--
				continue
			}
			kept = append(kept, p)
		}
		if over > 0 {
			kept = kept[over:]
		}
		u.pending = kept
		u.log.Warn("too many acks/results waiting for the link; oldest dropped", slog.Int("max", u.cfg.MaxPendingResults))
	}
	u.env.Metrics.setPending(len(u.pending))
}

func (u *Uplink) trimRecent() {
	cut := u.env.Clock.Now().Add(-u.cfg.ResultResendWindow)
	i := 0
	for i < len(u.recent) && u.recent[i].at.Before(cut) {
		i++
	}
	if i > 0 {
		u.recent = append(u.recent[:0], u.recent[i:]...)
	}
	if len(u.recent) > u.cfg.MaxPendingResults {
		u.recent = u.recent[len(u.recent)-u.cfg.MaxPendingResults:]
	}
}

// drop ends the current session and schedules the next attempt: after retryIn, or by Backoff when it is < 0.
func (u *Uplink) drop(ctx actor.Context, reason string, err error, retryIn time.Duration) {
	if u.state != stateUp {
		return
	}
	now := u.env.Clock.Now()
	upFor := now.Sub(u.upSince)
	sess := u.sess
	u.sess = nil
	u.closeAsync(sess)
	if u.hb != nil {
		u.hb.Stop()
		u.hb = nil
	}
	if u.refresh != nil {
		u.refresh.Stop()
		u.refresh = nil
	}
	u.refreshing = false
	// Results written shortly before the drop may be lost with the stream: they go out again first.
	u.trimRecent()
	resend := make([]*pb.NodeToCloud, 0, len(u.recent)+len(u.pending))
	for _, r := range u.recent {
		resend = append(resend, r.msg)
	}
	u.recent = nil
	u.pending = append(resend, u.pending...)
	u.env.Metrics.setPending(len(u.pending))

	u.state, u.since, u.lastErr = stateDown, now, err.Error()
	u.env.Metrics.setUp(false)
	u.env.Metrics.disconnect(reason)
	if retryIn < 0 {
		retryIn, u.attempts = u.cfg.Backoff.Next(u.attempts, upFor, u.rnd.Float64())
	} else if upFor >= u.cfg.Backoff.StableAfter {
		u.attempts = 0
	}
	u.log.Warn("link to the cloud down", slog.String("reason", reason), slog.Any("error", err),
		slog.Duration("was_up", upFor), slog.Duration("retry_in", retryIn))
	u.scheduleConnect(ctx, retryIn)
	u.announce(ctx)
}

// closeAsync tears a session down in a goroutine the actor owns (joining its goroutines may take a moment).
func (u *Uplink) closeAsync(s *session) {
	if s == nil {
		return
	}
	s.cancel()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		s.close()
	}()
}

// onStopping ends everything this incarnation started and waits for its goroutines.
func (u *Uplink) onStopping() {
	if u.stopped {
		return
	}
	u.stopped = true
	u.gen++
	if u.retry != nil {
		u.retry.Stop()
	}
	if u.hb != nil {
		u.hb.Stop()
	}
	if u.refresh != nil {
		u.refresh.Stop()
	}
	if u.sess != nil {
		if u.state == stateConnecting {
			u.sess.cancel() // the connector goroutine closes what it opened
		} else {
			u.closeAsync(u.sess)
		}
		u.sess = nil
	}
	if u.state == stateUp {
		u.env.Metrics.disconnect("stopped")
	}
	u.env.Metrics.setUp(false)
	u.state = stateDown
	u.wg.Wait()
}

func (u *Uplink) status() Status {
	return Status{Up: u.state == stateUp, Since: u.since, LastError: u.lastErr, Attempts: u.attempts,
		NextAttemptAt: u.retryAt, Connects: u.connects, Goaways: u.goaways, PendingResults: len(u.pending)}
}
