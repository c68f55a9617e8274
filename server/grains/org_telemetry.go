package grains

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// tellMiner hands an applied sample to the miner's Miner actor when it changes the state the actor holds
// (minerTelemetryDue): one message per state change rather than one per sample.
func (o *Org) tellMiner(ctx actor.Context, d *orgDevice, s *pb.Telemetry) {
	if !minerTelemetryDue(d.told, d.minerState, s) {
		return
	}
	d.minerState, d.told = s.GetState(), true
	ctx.Send(d.pid, &minerTelemetry{sample: s})
}

// tellMinerState hands a reported state change to the miner's Miner actor unless a newer sample's state
// stands (minerStateDue).
func (o *Org) tellMinerState(ctx actor.Context, d *orgDevice, c stateChange) {
	if !minerStateDue(d.observedMs, c.at.UnixMilli()) {
		return
	}
	d.minerState, d.told = c.state, true
	ctx.Send(d.pid, &minerState{state: c.state, at: c.at})
}
