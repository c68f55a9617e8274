package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/actors/progress"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// CtlOptions are what every `hashfleet ctl` subcommand shares: where the API is, how to show progress, and
// how often to look.
type CtlOptions struct {
	Client *apiclient.Client
	// Out gets tables and results; Progress gets the progress bar or lines (nil: none).
	Out, Progress io.Writer
	// TTY redraws the progress bar in place (progress.IsTerminal of the Progress writer).
	TTY bool
	// PollInterval spaces the status reads while waiting. Default 500ms.
	PollInterval time.Duration
	// Timeout bounds a wait (0: until ctx ends).
	Timeout time.Duration
	Clock   clock.Clock
}

func (o CtlOptions) withDefaults() CtlOptions {
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return o
}

// ErrCommandIncomplete: a command ended with miners that did not succeed.
var ErrCommandIncomplete = errors.New("command did not succeed on every miner")

// CtlMiners prints one page of miners as a table.
func CtlMiners(ctx context.Context, o CtlOptions, q apiclient.MinerQuery) error {
	o = o.withDefaults()
	page, err := o.Client.Miners(ctx, q)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MINER\tNODE\tSTATE\tTH/s\tTEMP °C\tPOWER W\tMODEL\tADDRESS")
	for _, m := range page.Items {
		state := m.State
		if m.Stale {
			state += " (stale)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.0f\t%.0f\t%s\t%s\n", m.ID, m.Node, state, m.HashrateThs, m.TempMaxC, m.PowerW, m.Model, m.Address)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%d of %d miners%s\n", len(page.Items), page.Total, countsSuffix(page.Counts))
	return nil
}

func countsSuffix(counts map[string]int) string {
	if len(counts) == 0 {
		return ""
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// CtlCommandRequest is a bulk command from the CLI: explicit miners, or every miner matching Select.
type CtlCommandRequest struct {
	apiclient.CommandRequest
	// Select picks the miners when MinerIDs is empty (its zero value: every miner).
	Select *apiclient.MinerQuery
	// NoWait returns once the command is accepted.
	NoWait bool
}

// CtlCommand issues a (bulk) command and, unless NoWait, shows its progress until every miner has a final
// result, then prints the results by code. It returns ErrCommandIncomplete when some miner did not succeed.
func CtlCommand(ctx context.Context, o CtlOptions, req CtlCommandRequest) (apiclient.Command, error) {
	o = o.withDefaults()
	if len(req.MinerIDs) == 0 && req.Select != nil {
		ids, err := o.Client.AllMinerIDs(ctx, *req.Select)
		if err != nil {
			return apiclient.Command{}, fmt.Errorf("select miners: %w", err)
		}
		if len(ids) == 0 {
			return apiclient.Command{}, errors.New("select miners: no miner matches")
		}
		req.MinerIDs = ids
	}
	acc, err := o.Client.IssueCommand(ctx, req.CommandRequest)
	if err != nil {
		return apiclient.Command{}, err
	}
	fmt.Fprintf(o.Out, "command %s (%s) accepted for %d miners%s\n", acc.CommandID, req.Action, len(req.MinerIDs),
		map[bool]string{true: " (existing: same idempotency key)", false: ""}[acc.Existing])
	if req.NoWait {
		return apiclient.Command{CommandID: acc.CommandID}, nil
	}
	rep := progress.New(progress.Config{Label: fmt.Sprintf("%s ×%d", req.Action, len(req.MinerIDs)),
		Total: int64(len(req.MinerIDs)), Unit: "miners", Out: o.Progress, TTY: o.TTY, Clock: o.Clock})
	cmd, err := pollUntil(ctx, o, func(ctx context.Context) (apiclient.Command, bool, error) {
		c, err := o.Client.CommandSummary(ctx, acc.CommandID) // counts only; the results once, at the end
		if err != nil {
			return c, false, err
		}
		rep.Set(int64(c.Final()))
		return c, c.Done(), nil
	})
	if err == nil {
		cmd, err = o.Client.Command(ctx, acc.CommandID)
	}
	rep.Finish(err)
	if err != nil {
		return cmd, fmt.Errorf("command %s: %w", acc.CommandID, err)
	}
	printResults(o.Out, cmd)
	if cmd.Summary["succeeded"] < len(cmd.Results) {
		return cmd, fmt.Errorf("command %s: %w (%d of %d succeeded)", acc.CommandID, ErrCommandIncomplete,
			cmd.Summary["succeeded"], len(cmd.Results))
	}
	return cmd, nil
}

// printResults prints the result counts by code and the first few failures.
func printResults(w io.Writer, c apiclient.Command) {
	byCode := map[string]int{}
	var failed []apiclient.MinerResult
	for _, r := range c.Results {
		byCode[r.Code]++
		if r.Status != "succeeded" {
			failed = append(failed, r)
		}
	}
	fmt.Fprintf(w, "command %s: %s%s\n", c.CommandID, c.Status, countsSuffix(byCode))
	for i, r := range failed {
		if i == 10 {
			fmt.Fprintf(w, "  … and %d more\n", len(failed)-i)
			break
		}
		fmt.Fprintf(w, "  %s: %s %s\n", r.MinerID, r.Code, r.Message)
	}
}

// CtlDiscover starts a discovery scan on a node and shows its progress until it finishes, then lists what
// it found.
func CtlDiscover(ctx context.Context, o CtlOptions, req apiclient.DiscoveryRequest) (apiclient.Scan, error) {
	o = o.withDefaults()
	started, err := o.Client.StartDiscovery(ctx, req)
	if err != nil {
		return apiclient.Scan{}, err
	}
	fmt.Fprintf(o.Out, "scan %s on node %s: %s\n", started.ScanID, started.Node, started.State)
	rep := progress.New(progress.Config{Label: "discovery " + strings.Join(req.Targets, ","), Unit: "hosts",
		Out: o.Progress, TTY: o.TTY, Clock: o.Clock})
	scan, err := pollUntil(ctx, o, func(ctx context.Context) (apiclient.Scan, bool, error) {
		s, err := o.Client.Discovery(ctx, started.ScanID)
		if err != nil {
			return s, false, err
		}
		if s.Progress.Total > 0 {
			rep.SetTotal(int64(s.Progress.Total))
		}
		rep.Set(int64(s.Progress.Probed))
		return s, s.Finished(), nil
	})
	if err == nil && scan.State != "done" {
		err = fmt.Errorf("scan %s: %s %s", scan.ScanID, scan.State, scan.Message)
	}
	rep.Finish(err)
	if err != nil {
		return scan, err
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSTATUS\tPROTOCOL\tMODEL\tADDRESS")
	for _, d := range scan.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.DeviceID, d.Status, d.Protocol, d.Model, d.Address)
	}
	_ = tw.Flush()
	fmt.Fprintf(o.Out, "scan %s: %d hosts probed, %d devices found, %d errors\n", scan.ScanID,
		scan.Progress.Probed, scan.Progress.Found, scan.Progress.Errors)
	return scan, nil
}

// pollUntil calls poll every PollInterval until it reports done, ctx ends or Timeout passes. A failing poll is
// retried (the server may be restarting) until three fail in a row.
func pollUntil[T any](ctx context.Context, o CtlOptions, poll func(context.Context) (T, bool, error)) (T, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	timer := o.Clock.NewTimer(0)
	defer timer.Stop()
	var last T
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("gave up waiting: %w", ctx.Err())
		case <-timer.C():
		}
		v, done, err := poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if failures++; failures >= 3 {
				return last, err
			}
		case err == nil:
			failures, last = 0, v
			if done {
				return v, nil
			}
		}
		timer.Reset(o.PollInterval)
	}
}

// CtlKeys lists the org's command-issuance keys.
func CtlKeys(ctx context.Context, o CtlOptions) error {
	o = o.withDefaults()
	keys, err := o.Client.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATE\tFINGERPRINT\tVALID FROM\tRETIRE AFTER")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.State, k.Fingerprint, fmtTime(k.ValidFrom), fmtTime(k.RetireAfter))
	}
	return tw.Flush()
}

// CtlRotateKey makes a new active key and says which nodes were sent the signed announcement.
func CtlRotateKey(ctx context.Context, o CtlOptions, overlap time.Duration) error {
	o = o.withDefaults()
	ch, err := o.Client.RotateKey(ctx, overlap)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "new active key %s, announced with %s (retired at %s) to %d nodes: %s\n", ch.KeyID, ch.SignerKeyID,
		fmtTime(ch.RetireAt), len(ch.Nodes), strings.Join(ch.Nodes, ", "))
	return nil
}

// CtlRevokeKey revokes a key for good.
func CtlRevokeKey(ctx context.Context, o CtlOptions, keyID string) error {
	o = o.withDefaults()
	ch, err := o.Client.RevokeKey(ctx, keyID)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "revoked %s; revocation sent to %d nodes: %s\n", ch.KeyID, len(ch.Nodes), strings.Join(ch.Nodes, ", "))
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
