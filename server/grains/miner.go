package grains

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Miner is the cloud side of one miner: its device registration, observed state, and the desired state
// operator commands set. It pushes desired-state changes into the FleetView; telemetry reaches the view
// straight from ingest, one message per batch rather than one per miner, and reaches the Miner only when a
// sample changes its state (latest is the sample that last did; the Org drops state changes older than the
// newest sample applied). Reconciling desired against observed state is a later issue; this actor is where
// it will live.
type Miner struct {
	id      string
	view    *actor.PID
	log     *slog.Logger
	device  *pb.Device
	latest  *pb.Telemetry
	state   pb.MinerState
	desired Desired
}

func newMiner(id string, view *actor.PID, log *slog.Logger) *Miner {
	return &Miner{id: id, view: view, log: log.With(slog.String("miner", id))}
}

func (m *Miner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *minerDevice:
		m.device = msg.device
	case *minerTelemetry:
		m.onTelemetry(msg)
	case *minerState:
		m.onState(msg)
	case *minerCommand:
		m.onCommand(ctx, msg)
	default:
		m.log.Warn("miner: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (m *Miner) onTelemetry(msg *minerTelemetry) {
	if m.latest != nil && msg.sample.GetObservedAtUnixMs() < m.latest.GetObservedAtUnixMs() {
		return
	}
	m.latest = msg.sample
	if m.state != msg.sample.GetState() {
		m.log.Debug("miner state", slog.String("from", StateName(m.state)), slog.String("to", StateName(msg.sample.GetState())))
		m.state = msg.sample.GetState()
	}
}

func (m *Miner) onState(msg *minerState) {
	if m.latest != nil && msg.at.UnixMilli() < m.latest.GetObservedAtUnixMs() {
		return
	}
	m.state = msg.state
}

func (m *Miner) onCommand(ctx actor.Context, msg *minerCommand) {
	d, changed := applyDesired(m.desired, msg.spec, msg.at)
	if !changed {
		return
	}
	m.desired = d
	ctx.Send(m.view, &viewDesired{miner: m.id, desired: d})
}
