package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors/clock"
)

// SendAfter delivers msg to pid after d on clk. It is how actors schedule their own ticks: a runtime timer,
// not a sleeping goroutine per actor. Stop the returned timer when the actor stops.
func SendAfter(clk clock.Clock, system *actor.ActorSystem, pid *actor.PID, d time.Duration, msg any) clock.Timer {
	return clk.AfterFunc(d, func() { system.Root.Send(pid, msg) })
}
