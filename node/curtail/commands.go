package curtail

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Command is one command for one or more miners, all given the same spec.
type Command struct {
	CommandID string
	// IdempotencyKey is what a MinerActor de-duplicates on (equal to CommandID here: a retry is a new command).
	IdempotencyKey string
	// Actor says who issued it, for the local command log and audit: "curtail:<event id>",
	// "automation:<rule id>".
	Actor    string
	MinerIDs []string
	Spec     *pb.CommandSpec
}

// Commander sends commands to miners. The node implements it by routing to the MinerActors (a site.Dispatch
// sent with replyTo as the sender, so each miner's *miner.Result comes back to replyTo), fencing on the lease
// epoch and logging each command as a local command. Dispatch is called inside Receive: it must not block.
type Commander interface {
	Dispatch(cmd Command, replyTo *actor.PID)
}

// CommanderFunc adapts a function to Commander.
type CommanderFunc func(cmd Command, replyTo *actor.PID)

// Dispatch implements Commander.
func (f CommanderFunc) Dispatch(cmd Command, replyTo *actor.PID) { f(cmd, replyTo) }

// Snapshots gives the site's miners. It is called inside Receive and must answer from memory (Board does).
type Snapshots interface {
	Snapshots() []MinerSnapshot
}

// SnapshotsFunc adapts a function to Snapshots.
type SnapshotsFunc func() []MinerSnapshot

// Snapshots implements Snapshots.
func (f SnapshotsFunc) Snapshots() []MinerSnapshot { return f() }

// Commands groups a step's actions into commands: actions sharing a CommandID (one spec) become one command
// naming all their miners, in the order the actions came.
func Commands(actor string, actions []Action) []Command {
	var out []Command
	idx := map[string]int{}
	for _, a := range actions {
		i, ok := idx[a.CommandID]
		if !ok {
			i = len(out)
			idx[a.CommandID] = i
			out = append(out, Command{CommandID: a.CommandID, IdempotencyKey: a.CommandID, Actor: actor, Spec: a.Spec})
		}
		out[i].MinerIDs = append(out[i].MinerIDs, a.MinerID)
	}
	return out
}
