package gate

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Local command log retention. A finished local command whose final result is in the outbox is kept for
// LocalEnv.Retention and then deleted with its indexes, a bounded number per sweep, so the log of a site that
// runs for years stays small. An entry that is still the newest local action on some miner's field is kept
// whatever its age: reconciliation of cloud commands reads it. Deleting an entry frees its idempotency key:
// a request repeated after the retention runs again (retention is days, a client's retries are seconds).
const (
	// DefaultLocalRetention keeps finished local commands 30 days.
	DefaultLocalRetention = 30 * 24 * time.Hour
	// DefaultLocalPruneEvery: a sweep at start and then hourly.
	DefaultLocalPruneEvery = time.Hour
	// localPruneBatch bounds the entries deleted in one transaction (and in one sweep) so the gate's mailbox is
	// never held for long; a backlog is worked off one batch per sweep.
	localPruneBatch = 512
)

type localPrune struct{}

func (localPrune) localMessage() {}

func (e *LocalEnv) retention() time.Duration {
	if e.Retention == 0 {
		return DefaultLocalRetention
	}
	return e.Retention
}

func (e *LocalEnv) pruneEvery() time.Duration {
	if e.PruneEvery <= 0 {
		return DefaultLocalPruneEvery
	}
	return e.PruneEvery
}

// localPrunable picks, oldest first, up to limit entries that may go: done, reported, finished before cutoffMs,
// and not the newest local action on any miner's field (keep). It stops at the first entry created at or after
// cutoffMs: the log is in HLC order, so nothing later is old enough.
func localPrunable(entries []*pb.LocalLogEntry, keep func(commandID string) bool, cutoffMs int64, limit int) []string {
	var out []string
	for _, e := range entries {
		if len(out) >= limit || e.GetCreatedAtUnixMs() >= cutoffMs {
			break
		}
		id := e.GetCommand().GetCommandId()
		if e.GetDone() && e.GetReported() && e.GetFinishedAtUnixMs() < cutoffMs && !keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// newestIDs are the command ids still indexed as the newest local action on some miner's field.
func (g *Gate) newestIDs() map[string]bool {
	ids := map[string]bool{}
	for _, byField := range g.localS().newest {
		for _, la := range byField {
			ids[la.CommandID] = true
		}
	}
	return ids
}

// onLocalPrune runs one sweep and schedules the next.
func (g *Gate) onLocalPrune(ctx actor.Context) {
	if !g.localEnabled() {
		return
	}
	env := g.env.Local
	defer func() {
		g.localS().prune = actors.SendAfter(g.env.Clock, ctx.ActorSystem(), ctx.Self(), env.pruneEvery(), localPrune{})
	}()
	if env.retention() < 0 {
		return
	}
	cutoff := g.env.Clock.Now().Add(-env.retention()).UnixMilli()
	var old []*pb.LocalLogEntry
	err := env.Log.LocalCommands(false, func(e *pb.LocalLogEntry) bool {
		if e.GetCreatedAtUnixMs() >= cutoff || len(old) >= 4*localPruneBatch {
			return false
		}
		old = append(old, e)
		return true
	})
	if err != nil {
		g.log.Error("local command log sweep: cannot read the log", slog.Any("error", err))
		return
	}
	keep := g.newestIDs()
	ids := localPrunable(old, func(id string) bool { return keep[id] }, cutoff, localPruneBatch)
	if len(ids) == 0 {
		return
	}
	n, err := env.Log.DeleteLocal(ids...)
	if err != nil {
		g.log.Error("local command log sweep: cannot delete", slog.Int("entries", len(ids)), slog.Any("error", err))
		return
	}
	g.log.Info("local command log swept", slog.Int("deleted", n), slog.Duration("retention", env.retention()))
}
