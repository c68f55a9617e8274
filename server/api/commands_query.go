package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/store"
)

// GET /api/v1/commands/{id} with query parameters: a cheap way to follow a bulk command.
//
//	?summary=1                        status, finished_at and counts by result status; no per-miner results
//	?results_after=ID&limit=N         one page of results in the command's miner order (next_results_after
//	?status=failed,timeout            names the next page's start); status filters the page
//
// Without parameters the answer is the whole record, as before.

// CommandViewer is an optional Backend capability: a command's counts or one page of its results without a
// copy of the whole record (*grains.Fleet has it). A Backend without it is served from Command.
type CommandViewer interface {
	CommandView(ctx context.Context, id string, q grains.CommandQuery) (grains.CommandView, error)
}

// commandQueryParams are the query parameters GET /api/v1/commands/{id} takes.
var commandQueryParams = []string{"summary", "results_after", "limit", "status"}

// parseCommandQuery reads the query parameters; ok is false when there are none (the whole record).
func parseCommandQuery(r *http.Request) (q grains.CommandQuery, ok bool, err error) {
	v := r.URL.Query()
	if len(v) == 0 {
		return q, false, nil
	}
	for k, vals := range v {
		if !slices.Contains(commandQueryParams, k) {
			return q, false, fmt.Errorf("%w: unknown query parameter %q (want one of %s)", ErrBadRequest, k, strings.Join(commandQueryParams, ", "))
		}
		if len(vals) > 1 {
			return q, false, fmt.Errorf("%w: query parameter %q given %d times", ErrBadRequest, k, len(vals))
		}
	}
	if s, has := v["summary"]; has {
		switch s[0] {
		case "1", "true":
			q.Summary = true
		case "0", "false":
		default:
			return q, false, fmt.Errorf("%w: summary must be 1, true, 0 or false, got %q", ErrBadRequest, s[0])
		}
	}
	if s, has := v["results_after"]; has {
		if err := store.ValidID(s[0]); err != nil {
			return q, false, fmt.Errorf("%w: results_after %q: %v", ErrBadRequest, s[0], err)
		}
		q.After = s[0]
	}
	if s, has := v["limit"]; has {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > grains.MaxResultsLimit {
			return q, false, fmt.Errorf("%w: limit must be an integer in [1, %d], got %q", ErrBadRequest, grains.MaxResultsLimit, s[0])
		}
		q.Limit = n
	}
	if s, has := v["status"]; has {
		for part := range strings.SplitSeq(s[0], ",") {
			part = strings.TrimSpace(strings.ToLower(part))
			if !slices.Contains(grains.ResultStatuses, part) {
				return q, false, fmt.Errorf("%w: status %q: want a comma-separated list of %s", ErrBadRequest, part, strings.Join(grains.ResultStatuses, ", "))
			}
			if !slices.Contains(q.Statuses, part) {
				q.Statuses = append(q.Statuses, part)
			}
		}
	}
	if q.Summary && (q.After != "" || q.Limit != 0 || len(q.Statuses) > 0) {
		return q, false, fmt.Errorf("%w: summary=1 returns no results: drop results_after, limit and status", ErrBadRequest)
	}
	return q, true, nil
}

// commandView answers a query from the backend's view, or from the whole record when it has none.
func (a *API) commandView(ctx context.Context, id string, q grains.CommandQuery) (grains.CommandView, error) {
	if cv, ok := a.backend.(CommandViewer); ok {
		return cv.CommandView(ctx, id, q)
	}
	rec, err := a.backend.Command(ctx, id)
	if err != nil {
		return grains.CommandView{}, err
	}
	return grains.ViewCommand(rec, q)
}

// toCommandView is the JSON of a view: the record's fields, the counts, and the page (results absent with
// summary).
func toCommandView(v grains.CommandView) CommandJSON {
	out := CommandToJSON(v.Command)
	out.Miners, out.Summary = v.Miners, v.Counts
	out.NextResultsAfter = v.NextAfter
	if v.Results == nil {
		out.Results = nil
		return out
	}
	out.Results = make([]MinerResultJSON, 0, len(v.Results))
	for _, r := range v.Results {
		out.Results = append(out.Results, MinerResultToJSON(r.GetMinerId(), r))
	}
	return out
}
