package grains

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// replacedReconnectAfter is what a session replaced by a newer stream tells its node: two processes
// claiming one node id should not reconnect in a tight loop.
const replacedReconnectAfter = 5 * time.Second

// Node is the cloud side of one node: its live control session (newest stream wins), last heartbeat, the
// devices it owns, and its command queue with the per-node monotonic seq counter. A command is persisted
// (queue entry and counter, one synced transaction) before it is sent; it leaves the queue on a final
// report, a refusal, or when the CommandTracker drops it (timeout). On hello every queued command with
// seq > last_seq is sent again.
type Node struct {
	id      string
	cfg     *Config
	log     *slog.Logger
	tracker *actor.PID
	view    *actor.PID

	lastSeq uint64
	queue   map[uint64]*queued
	devices map[string]*pb.Device

	session        *actor.PID
	hello          *pb.ControlHello
	connectedSince time.Time
	lastHeartbeat  time.Time

	process   *pb.NodeMetrics // the node's latest forwarded process snapshot (nil: none since start)
	processAt time.Time       // when it arrived

	pair *nodePair // the warm-standby pair this node is a member of (nil: none; node_pair.go)

	localWM *pb.HLC // newest local command the node reported (reconcile.go); nil: none
}

type queued struct {
	cmd      *pb.ControlCommand // immutable once queued: it may be on its way to the wire
	minerIDs []string
	key      bool // a key announcement or revocation: not an operator command, not tracked
	control  bool // a discovery scan or pairing: not tracked; acks and reports go to the Org
	// pair is the warm-standby pair whose devices the command names (its lease_epoch is the pair's, never
	// re-signed to the hello's); running is set once the node acked it RUNNING or DUPLICATE.
	pair    string
	running bool
	// bounced: the holder refused it as fenced or for its epoch without consuming the seq; it is sent
	// again when the node is granted that epoch (node_pair.go).
	bounced bool
	// fencedMoved are the miners whose writes the node reported FENCED (never started: it lost the lease
	// after accepting the command) and that were moved to the pair's holder (node_pair.go).
	fencedMoved map[string]bool
}

func isKeyPayload(p *pb.CommandPayload) bool {
	return p.GetKeyAnnouncement() != nil || p.GetKeyRevocation() != nil
}

func newNode(id string, cfg *Config, tracker, view *actor.PID) *Node {
	return &Node{id: id, cfg: cfg, log: cfg.Logger.With(slog.String("node", id)), tracker: tracker, view: view,
		queue: map[uint64]*queued{}, devices: map[string]*pb.Device{}}
}

func (n *Node) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		n.onStarted(ctx)
	case *actor.Stopping, *actor.Restarting:
		n.onStopping(ctx)
	case *actor.Stopped:
	case *AttachSession:
		n.onAttach(ctx, m)
	case *DetachSession:
		n.onDetach(ctx, m)
	case *SessionFrame:
		n.onFrame(ctx, m)
	case *Heartbeat:
		n.onHeartbeat(ctx, m)
	case *enqueueCommand:
		n.onEnqueue(ctx, m)
	case *dropCommand:
		n.onDrop(ctx, m)
	case *addDevices:
		for _, d := range m.devices {
			n.devices[d.GetMinerId()] = d
		}
		n.sendOwnership(ctx)
		n.pushStatus(ctx)
	case *removeDevices:
		n.onRemoveDevices(ctx, m)
	case *injectCommand:
		n.onInject(ctx, m)
	case *setNodePair, *deliverGrant, *withdrawPair, *pb.LeaseGrant, *pb.LeaseDenied, *actor.DeadLetterResponse:
		n.onPairMessage(ctx, m)
	case *localWatermark:
		n.onLocalWatermark(m)
	case *nodeProcess:
		// The newest snapshot wins: one spooled while the link was down may arrive after a newer one.
		if n.process == nil || m.metrics.GetAtUnixMs() >= n.process.GetAtUnixMs() {
			n.process, n.processAt = m.metrics, m.receivedAt
			n.cfg.Metrics.nodeProcess(n.id, m.metrics, m.receivedAt)
			n.pushStatus(ctx)
		}
	default:
		n.log.Warn("node: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

// onStarted loads the queue, counter and devices, and announces every queued command to the tracker, which
// answers dropCommand for those that finished meanwhile (a timeout while the server was down).
func (n *Node) onStarted(ctx actor.Context) {
	seq, queue, err := n.cfg.Store.NodeQueue(n.id)
	if err != nil {
		panic(fmt.Errorf("node %s: load queue: %w", n.id, err)) // the supervisor retries with backoff
	}
	n.lastSeq = seq
	n.loadLocalWatermark()
	for _, c := range queue {
		var p pb.CommandPayload
		if err := proto.Unmarshal(c.GetPayload(), &p); err != nil {
			n.log.Error("queued command has an unreadable payload, dropping it", slog.String("command", c.GetCommandId()),
				slog.Uint64("seq", c.GetMonotonicSeq()), slog.Any("err", err))
			_ = n.cfg.Store.Dequeue(n.id, c.GetMonotonicSeq())
			continue
		}
		q := &queued{cmd: c, minerIDs: p.GetMinerIds(), key: isKeyPayload(&p), control: isControlPayload(&p)}
		n.queue[c.GetMonotonicSeq()] = q
		if !q.key && !q.control {
			ctx.Request(n.tracker, &commandIssued{commandID: c.GetCommandId(), node: n.id, seq: c.GetMonotonicSeq()})
		}
	}
	devs, err := n.cfg.Store.Devices()
	if err != nil {
		panic(fmt.Errorf("node %s: load devices: %w", n.id, err))
	}
	for _, d := range devs {
		if d.GetNodeId() == n.id {
			n.devices[d.GetMinerId()] = d
		}
	}
	ctx.Send(ctx.Parent(), &nodeStarted{node: n.id}) // a restarted Node learns its pair again
	n.pushStatus(ctx)
}

// onStopping closes the live stream so the node re-handshakes with whatever instance comes next.
func (n *Node) onStopping(ctx actor.Context) {
	if n.session == nil {
		return
	}
	ctx.Send(n.session, &Goaway{Reason: "node actor restarting", ReconnectAfter: time.Second})
	n.session = nil
	n.cfg.Metrics.nodeConnected(-1)
}

func (n *Node) onAttach(ctx actor.Context, m *AttachSession) {
	if n.session != nil {
		if !n.session.Equal(m.Session) {
			n.log.Info("newer control stream replaces the current one", slog.String("old", n.session.Id), slog.String("new", m.Session.Id))
			ctx.Send(n.session, &Goaway{Reason: "replaced by a newer control stream", ReconnectAfter: replacedReconnectAfter})
		}
	} else {
		n.cfg.Metrics.nodeConnected(1)
	}
	now := n.cfg.Clock.Now()
	n.session, n.hello, n.connectedSince = m.Session, m.Hello, now
	// A stream attaching is a sign of life: the heartbeat age starts now, not at the first heartbeat.
	n.cfg.Metrics.heartbeatAt(n.id, now)
	if last := m.Hello.GetLastSeq(); last > n.lastSeq {
		// The node executed seqs we never allocated (our store was lost or restored from an old copy): new
		// commands must start above its mark or its gate refuses them.
		n.log.Warn("node's seq mark is ahead of the cloud's counter; raising the counter",
			slog.Uint64("node_last_seq", last), slog.Uint64("cloud_last_seq", n.lastSeq))
		if err := n.cfg.Store.RaiseSeq(n.id, last); err != nil {
			n.log.Error("raise seq counter", slog.Any("err", err))
		}
		n.lastSeq = last
	}
	ctx.Send(n.session, &SendFrame{Frame: n.helloAck()})
	n.pairAttached(ctx)
	resend := n.resendAfter(m.Hello.GetLastSeq())
	for _, seq := range resend {
		n.send(ctx, n.queue[seq])
	}
	n.log.Info("control stream attached", slog.Uint64("node_last_seq", m.Hello.GetLastSeq()),
		slog.Int("resent", len(resend)), slog.Bool("standby", m.Hello.GetStandby()))
	n.pushStatus(ctx)
}

// resendAfter lists queued seqs above the node's mark, ascending.
func (n *Node) resendAfter(last uint64) []uint64 {
	var out []uint64
	for seq := range n.queue {
		if seq > last {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

func (n *Node) helloAck() *pb.CloudToNode {
	ack := &pb.HelloAck{NodeId: n.id, NextSeq: n.lastSeq + 1, Devices: n.withLogins(n.deviceList())}
	if s := n.cfg.Signer; s != nil {
		ack.CommandKeys = s.Keys()
	}
	if n.pair != nil {
		ack.Pair = n.pair.info
	}
	return &pb.CloudToNode{Msg: &pb.CloudToNode_HelloAck{HelloAck: ack}}
}

// sendOwnership tells a connected node its ownership map changed (a pairing): a HelloAck on the live stream
// replaces the node's device set, as the one after hello did.
func (n *Node) sendOwnership(ctx actor.Context) {
	if n.session != nil {
		ctx.Send(n.session, &SendFrame{Frame: n.helloAck()})
	}
}

// onInject writes a command to the live stream as is, without queueing, signing or tracking it. It exists
// to prove the node's gate (tests, and `hashfleet server --debug-inject`): a node must refuse anything the
// cloud did not sign for it with a fresh seq, whoever sends it.
func (n *Node) onInject(ctx actor.Context, m *injectCommand) {
	if n.session == nil {
		ctx.Respond(fmt.Errorf("%w: %s", ErrNotConnected, n.id))
		return
	}
	n.log.Warn("injecting a raw command on the node's stream", slog.String("command", m.cmd.GetCommandId()),
		slog.Uint64("seq", m.cmd.GetMonotonicSeq()), slog.String("key", m.cmd.GetKeyId()))
	ctx.Send(n.session, &SendFrame{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: m.cmd}}})
	ctx.Respond(okReply{})
}

func (n *Node) deviceList() []*pb.Device {
	out := make([]*pb.Device, 0, len(n.devices))
	for _, d := range n.devices {
		out = append(out, d)
	}
	out = append(out, n.partnerDevices()...)
	slices.SortFunc(out, func(a, b *pb.Device) int {
		switch {
		case a.GetMinerId() < b.GetMinerId():
			return -1
		case a.GetMinerId() > b.GetMinerId():
			return 1
		}
		return 0
	})
	return out
}

func (n *Node) onDetach(ctx actor.Context, m *DetachSession) {
	if n.session == nil || !n.session.Equal(m.Session) {
		return
	}
	n.log.Info("control stream detached", slog.String("reason", m.Reason))
	n.session = nil
	n.cfg.Metrics.nodeConnected(-1)
	n.pushStatus(ctx)
}

func (n *Node) onHeartbeat(ctx actor.Context, m *Heartbeat) {
	n.lastHeartbeat = m.At
	n.cfg.Metrics.heartbeatAt(n.id, m.At)
	n.pairHeard(ctx)
	n.pushStatus(ctx)
}

func (n *Node) onEnqueue(ctx actor.Context, m *enqueueCommand) {
	seq := n.lastSeq + 1
	key, ctl := m.keys != nil, m.control != nil
	payload, err := m.keys, error(nil)
	switch {
	case ctl:
		payload = m.control
	case !key:
		payload, err = proto.Marshal(&pb.CommandPayload{MinerIds: m.minerIDs, Spec: m.spec})
	}
	if err == nil {
		epoch := n.hello.GetLeaseEpoch()
		if m.pair != "" {
			epoch = m.epoch
		}
		cmd := &pb.ControlCommand{CommandId: m.commandID, Actor: m.actor, NodeId: n.id, MonotonicSeq: seq,
			LeaseEpoch: epoch, IdempotencyKey: m.commandID, Payload: payload,
			IssuedAtUnixMs: m.issuedAt.UnixMilli(), LocalWatermark: n.localWM}
		if m.stamped {
			cmd.LocalWatermark = m.watermark
		}
		if m.sign != nil {
			err = m.sign(cmd)
		} else if s := n.cfg.Signer; s != nil {
			err = s.Sign(cmd)
		}
		if err == nil {
			err = n.cfg.Store.Enqueue(n.id, cmd)
		}
		if err == nil {
			n.lastSeq = seq
			q := &queued{cmd: cmd, minerIDs: m.minerIDs, key: key, control: ctl, pair: m.pair}
			n.queue[seq] = q
			if !key && !ctl {
				ctx.Request(n.tracker, &commandIssued{commandID: m.commandID, node: n.id, seq: seq})
			}
			n.log.Info("command queued", slog.String("command", m.commandID), slog.Uint64("seq", seq), slog.Uint64("epoch", cmd.GetLeaseEpoch()),
				slog.Int("miners", len(m.minerIDs)), slog.Bool("key_command", key), slog.String("key", cmd.GetKeyId()),
				slog.Bool("connected", n.session != nil))
			n.send(ctx, q)
			n.pushStatus(ctx)
			return
		}
	}
	n.log.Error("could not queue command", slog.String("command", m.commandID), slog.Bool("key_command", key), slog.Any("err", err))
	if ctl {
		ctx.Send(ctx.Parent(), &controlOutcome{node: n.id, commandID: m.commandID, ack: &pb.CommandAck{CommandId: m.commandID,
			Code: pb.ResultCode_RESULT_CODE_FAILED, Message: "cloud could not queue the command: " + err.Error()}})
		return
	}
	if !key {
		ctx.Send(n.tracker, &commandAcked{commandID: m.commandID, node: n.id, minerIDs: m.minerIDs,
			code: pb.ResultCode_RESULT_CODE_FAILED, message: "cloud could not queue the command: " + err.Error()})
	}
}

// send writes a queued command to the live session, re-signed if the node's lease epoch changed since.
func (n *Node) send(ctx actor.Context, q *queued) {
	if n.session == nil {
		return
	}
	cmd := q.cmd
	// Key commands go as signed: the gate does not check their epoch, and an announcement's signer may be
	// revoked or retired by now, so signing it again could only lose it.
	if epoch := n.hello.GetLeaseEpoch(); q.pair == "" && !q.key && cmd.GetLeaseEpoch() != epoch {
		c := proto.Clone(cmd).(*pb.ControlCommand)
		c.LeaseEpoch = epoch
		if s := n.cfg.Signer; s != nil {
			if err := s.Sign(c); err != nil {
				n.log.Error("re-sign command for the new lease epoch", slog.String("command", c.GetCommandId()), slog.Any("err", err))
				return
			}
		}
		q.cmd, cmd = c, c
	}
	ctx.Send(n.session, &SendFrame{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: cmd}}})
}

func (n *Node) onFrame(ctx actor.Context, m *SessionFrame) {
	switch f := m.Frame.GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		n.onAck(ctx, f.Ack)
	case *pb.NodeToCloud_Result:
		n.onResult(ctx, f.Result)
	case *pb.NodeToCloud_LeaseRequest:
		n.onLeaseRequest(ctx, f.LeaseRequest)
	default:
		n.log.Warn("node: unexpected frame from session", slog.String("type", fmt.Sprintf("%T", f)))
	}
}

// entry finds the queued command a frame refers to; nil when the seq is not queued (finished, dropped) or
// names another command.
func (n *Node) entry(commandID string, seq uint64) *queued {
	q := n.queue[seq]
	if q == nil {
		return nil
	}
	if q.cmd.GetCommandId() != commandID {
		n.log.Warn("frame names a command that does not match its seq", slog.Uint64("seq", seq),
			slog.String("command", commandID), slog.String("queued", q.cmd.GetCommandId()))
		return nil
	}
	return q
}

func (n *Node) onAck(ctx actor.Context, a *pb.CommandAck) {
	// Every refusal the node reports counts, also of commands no longer queued here (a replay or an injected
	// command the gate caught, a key command it could not apply).
	if c := a.GetCode(); IsFinalResult(c) && c != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		n.cfg.Metrics.commandRefused(ResultCodeName(c))
	}
	q := n.entry(a.GetCommandId(), a.GetMonotonicSeq())
	if q == nil {
		n.log.Debug("ack for a command no longer queued", slog.String("command", a.GetCommandId()), slog.Uint64("seq", a.GetMonotonicSeq()))
		return
	}
	code := a.GetCode()
	if code == pb.ResultCode_RESULT_CODE_UNSPECIFIED {
		code = pb.ResultCode_RESULT_CODE_RUNNING
	}
	if q.control {
		n.onControlAck(ctx, a, code)
		return
	}
	if q.key {
		switch {
		case code == pb.ResultCode_RESULT_CODE_SUCCEEDED:
			n.log.Info("node applied key command", slog.Uint64("seq", a.GetMonotonicSeq()))
		case IsFinalResult(code):
			n.log.Error("node did not apply key command", slog.Uint64("seq", a.GetMonotonicSeq()),
				slog.String("code", ResultCodeName(code)), slog.String("message", a.GetMessage()))
		}
		if IsFinalResult(code) {
			n.dequeue(ctx, a.GetMonotonicSeq())
		}
		return
	}
	if !IsFinalResult(code) {
		q.running = true
	}
	if n.pairBounced(q, code, a.GetMessage()) {
		return
	}
	if IsFinalResult(code) {
		n.log.Warn("node refused command", slog.String("command", a.GetCommandId()), slog.Uint64("seq", a.GetMonotonicSeq()),
			slog.String("code", ResultCodeName(code)), slog.String("message", a.GetMessage()))
		n.dequeue(ctx, a.GetMonotonicSeq())
	}
	ctx.Send(n.tracker, &commandAcked{commandID: a.GetCommandId(), node: n.id, minerIDs: q.minerIDs, code: code, message: a.GetMessage()})
}

func (n *Node) onResult(ctx actor.Context, r *pb.CommandResultReport) {
	q := n.entry(r.GetCommandId(), r.GetMonotonicSeq())
	rep := &commandReport{commandID: r.GetCommandId(), node: n.id, results: r.GetResults(), done: r.GetDone()}
	n.recordConflicts(q, r)
	if q != nil && q.control {
		n.onControlReport(ctx, r)
		return
	}
	if q != nil && q.key {
		if r.GetDone() {
			n.dequeue(ctx, r.GetMonotonicSeq())
		}
		return
	}
	if q != nil {
		rep.minerIDs = q.minerIDs
		rep.minerIDs, rep.results = n.moveFenced(ctx, q, rep.minerIDs, rep.results)
		if r.GetDone() {
			n.dequeue(ctx, r.GetMonotonicSeq())
		}
	}
	ctx.Send(n.tracker, rep)
}

func (n *Node) onDrop(ctx actor.Context, m *dropCommand) {
	if q := n.queue[m.seq]; q != nil && q.cmd.GetCommandId() == m.commandID {
		n.dequeue(ctx, m.seq)
	}
}

func (n *Node) dequeue(ctx actor.Context, seq uint64) {
	if err := n.cfg.Store.Dequeue(n.id, seq); err != nil {
		// Left in the store, it is announced again at the next start and dropped then.
		n.log.Error("dequeue command", slog.Uint64("seq", seq), slog.Any("err", err))
	}
	delete(n.queue, seq)
	n.pushStatus(ctx)
}

func (n *Node) pushStatus(ctx actor.Context) {
	st := NodeStatus{ID: n.id, Connected: n.session != nil, LastHeartbeat: n.lastHeartbeat, LastSeq: n.lastSeq,
		QueuedCommands: len(n.queue), Devices: len(n.devices)}
	if n.session != nil {
		st.ConnectedSince = n.connectedSince
	}
	if h := n.hello; h != nil {
		st.SoftwareVersion, st.Standby, st.LeaseEpoch, st.NodeLastSeq = h.GetSoftwareVersion(), h.GetStandby(), h.GetLeaseEpoch(), h.GetLastSeq()
	}
	st.Process, st.ProcessReceivedAt = n.process, n.processAt
	ctx.Send(n.view, &viewNode{status: st})
	n.cfg.Metrics.setQueued(n.id, len(n.queue))
}
