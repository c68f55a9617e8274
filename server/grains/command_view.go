package grains

import (
	"context"
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Following a bulk command without copying every miner's result: the counts by status, or one page of the
// results in the command's miner order. The CommandTracker answers these from its live record (no clone of
// the whole record), finished commands from the store.

// ResultStatuses are the per-miner result statuses of the API, in display order (ResultName's values).
var ResultStatuses = []string{"pending", "running", "succeeded", "failed", "timeout"}

// MaxResultsLimit bounds one page of a command's results.
const MaxResultsLimit = 10_000

// CommandQuery selects what a CommandView holds.
type CommandQuery struct {
	// Summary: the counts only, no results.
	Summary bool
	// After: the page starts after this miner (in the command's miner order); "" starts at the first.
	After string
	// Limit: at most this many results (1..MaxResultsLimit); 0 takes every remaining one.
	Limit int
	// Statuses: only results whose status (ResultStatuses) is one of these; empty takes every status.
	Statuses []string
}

// CommandView is a command's header, its counts over every miner, and the selected page of results.
type CommandView struct {
	// Command is the record without its miner list and results.
	Command *pb.CommandRecord
	// Counts: miners by result status, every status of ResultStatuses present.
	Counts map[string]int
	// Miners is how many miners the command names.
	Miners int
	// Results is the page, in the command's miner order (nil with Summary).
	Results []*pb.MinerResult
	// NextAfter is the After of the next page (this page's last miner) when more results match; "" when none
	// does.
	NextAfter string
}

// Validate reports a query that cannot be answered, wrapping ErrInvalidQuery.
func (q CommandQuery) Validate() error {
	if q.Summary && (q.After != "" || q.Limit != 0 || len(q.Statuses) > 0) {
		return fmt.Errorf("%w: a summary has no results to page or filter", ErrInvalidQuery)
	}
	if q.Limit < 0 || q.Limit > MaxResultsLimit {
		return fmt.Errorf("%w: limit %d must be in [1, %d]", ErrInvalidQuery, q.Limit, MaxResultsLimit)
	}
	for _, s := range q.Statuses {
		if !slices.Contains(ResultStatuses, s) {
			return fmt.Errorf("%w: unknown result status %q (want one of %v)", ErrInvalidQuery, s, ResultStatuses)
		}
	}
	return nil
}

// ViewCommand builds the view q selects of rec, copying only the header and the page. An After that is not a
// miner of the command is ErrInvalidQuery.
func ViewCommand(rec *pb.CommandRecord, q CommandQuery) (CommandView, error) {
	if err := q.Validate(); err != nil {
		return CommandView{}, err
	}
	ids := rec.GetMinerIds()
	start := 0
	if q.After != "" {
		i := slices.Index(ids, q.After)
		if i < 0 {
			return CommandView{}, fmt.Errorf("%w: results_after %q is not a miner of command %s", ErrInvalidQuery, q.After, rec.GetCommandId())
		}
		start = i + 1
	}
	v := CommandView{Command: commandHeader(rec), Counts: make(map[string]int, len(ResultStatuses)), Miners: len(ids)}
	for _, s := range ResultStatuses {
		v.Counts[s] = 0
	}
	results := rec.GetResults()
	for _, id := range ids {
		v.Counts[ResultName(results[id].GetCode())]++
	}
	if q.Summary {
		return v, nil
	}
	v.Results = []*pb.MinerResult{}
	for i := start; i < len(ids); i++ {
		r := results[ids[i]]
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, ResultName(r.GetCode())) {
			continue
		}
		if q.Limit > 0 && len(v.Results) == q.Limit { // another one matches: the next page starts after this page's last
			v.NextAfter = v.Results[len(v.Results)-1].GetMinerId()
			break
		}
		if r == nil {
			r = &pb.MinerResult{MinerId: ids[i], Code: pb.ResultCode_RESULT_CODE_PENDING}
		}
		v.Results = append(v.Results, proto.Clone(r).(*pb.MinerResult))
	}
	return v, nil
}

// commandHeader copies rec without its miner list and results.
func commandHeader(rec *pb.CommandRecord) *pb.CommandRecord {
	ids, results := rec.MinerIds, rec.Results
	rec.MinerIds, rec.Results = nil, nil
	h := proto.Clone(rec).(*pb.CommandRecord)
	rec.MinerIds, rec.Results = ids, results
	return h
}

// getCommandView asks the CommandTracker for a view.
type getCommandView struct {
	id string
	q  CommandQuery
}

// CommandView returns the counts and one page of a command's results; ErrUnknownCommand when there is none,
// ErrInvalidQuery for a query it cannot answer.
func (f *Fleet) CommandView(ctx context.Context, id string, q CommandQuery) (CommandView, error) {
	return ask[CommandView](ctx, f, toTracker, &getCommandView{id: id, q: q})
}
