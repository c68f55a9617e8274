package miner

import (
	"context"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/writelog"
)

// WriteGuard decides whether a write to a miner may start now (a warm-standby pair's lease). Reads and polls
// never ask it.
type WriteGuard interface {
	// BeginWrite reports whether a write may start now: the lease epoch to tag it with and the instant its
	// I/O must end by (zero: no bound), or an error wrapping ErrFenced. It must not block.
	BeginWrite() (epoch uint64, until time.Time, err error)
}

// writeGate is what startCommand's worker runs under: the guard's check at the write's start, the permit's
// deadline on its I/O, and the write log entry when it ends.
type writeGate struct {
	guard WriteGuard
	log   writelog.Log
	node  string
	miner string
}

// begin checks the guard and bounds ctx by the permit's deadline. On refusal it returns an error wrapping
// ErrFenced and no context.
func (w writeGate) begin(ctx context.Context) (context.Context, context.CancelFunc, uint64, error) {
	if w.guard == nil {
		return ctx, func() {}, 0, nil
	}
	epoch, until, err := w.guard.BeginWrite()
	if err != nil {
		return nil, nil, epoch, err
	}
	if until.IsZero() {
		return ctx, func() {}, epoch, nil
	}
	c, cancel := context.WithDeadline(ctx, until)
	return c, cancel, epoch, nil
}

func (w writeGate) record(commandID string, spec *pb.CommandSpec, epoch uint64, started, finished time.Time, err error) {
	if w.log == nil {
		return
	}
	e := writelog.Entry{Node: w.node, Miner: w.miner, Command: commandID, Epoch: epoch, Start: started, Finish: finished,
		Action: strings.ToLower(strings.TrimPrefix(spec.GetAction().String(), "ACTION_")),
		Code:   strings.ToLower(strings.TrimPrefix(resultCode(err).String(), "RESULT_CODE_"))}
	if err != nil {
		e.Error = err.Error()
	}
	w.log.Record(e)
}
