package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// FanoutSuite issues bulk commands to every miner through the cloud API: the real cloud server in its own
// process, a real split-mode node enrolled over its TLS gateway, the simulated miners in theirs. Each trial is
// POST /api/v1/commands naming every miner, then GET /api/v1/commands/{id}?summary=1 until every miner has a
// final result, then the results in pages.
type FanoutSuite struct{}

func (FanoutSuite) Name() string { return "fanout" }

func (FanoutSuite) Describe() string {
	return "a bulk command (set power target, reboot) to every miner through the cloud API: time until all acknowledged, per-miner p50/p99"
}

// fanoutActions are the bulk commands, in the order they run: the reboots last, since each leaves the
// miners unreachable for a few seconds.
var fanoutActions = []apiclient.CommandRequest{
	{Action: "set_power_target", PowerTargetW: 3000},
	{Action: "reboot"},
}

// How often a trial asks for the command's counts (?summary=1, a few hundred bytes; the figures come from the
// results' timestamps, not from when a poll saw them), how long it may take, and the page size it reads the
// per-miner results in once every miner is final.
const (
	fanoutPollEvery = 250 * time.Millisecond
	fanoutTimeout   = 3 * time.Minute
	fanoutPage      = 5_000
)

// fanoutTrial is one bulk command as the API told it.
type fanoutTrial struct {
	action            string
	issued            time.Time     // just before the POST
	accepted          time.Duration // the POST's round trip
	allAcked          time.Duration // issued → the command's finished_at
	seenDone          time.Duration // issued → the GET that first showed every result final
	latencies         []time.Duration
	waits, ios        []time.Duration // per miner: issued → started_at (to the node, through its gate, waiting for a slot), started_at → finished_at (the miner's I/O)
	succeeded, failed int
	// CPU from just before the POST until the GET that saw every result final: this process (the node and
	// the polling client), the simulators, the cloud; and how busy the whole machine was.
	nodeCPU, simCPU, cloudCPU time.Duration
	machineBusy               float64
	firstFailure              string
	finishedAtMissingFor      int
}

// Run starts the site, the cloud and the node, pairs every miner, and runs o.Trials trials of each action.
func (FanoutSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = newCloudResult("fanout", o)
	res.param("trials", o.Trials)
	res.param("max_inflight", o.MaxInFlight)
	res.param("max_command_inflight", o.MaxCommandsInFlight)
	s, err := startSite(ctx, o, res.Name, prog)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	prog.Stage(res.Name, "start the cloud", "", 0)
	c, err := startCloud(ctx, o)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	prog.Stage(res.Name, "enroll the node and pair its miners", "miners", int64(len(s.devices)))
	n, err := startCloudNode(ctx, o, c, cloudNodeOptions{name: "bench-fanout", devices: s.devices, pollInterval: o.Interval})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	if err := waitSeen(ctx, c, len(s.devices), prog); err != nil {
		return res, fmt.Errorf("miners reporting: %w", err)
	}
	ids := make([]string, 0, len(s.devices))
	for _, d := range s.devices {
		ids = append(ids, d.GetMinerId())
	}
	stopProfile, perr := startProfile(profilesFor(o, "node", false).cpu)
	if perr != nil {
		res.note("%v", perr)
	}
	defer stopProfile()
	var trials []fanoutTrial
	for _, a := range fanoutActions {
		for k := range o.Trials {
			prog.Stage(res.Name, fmt.Sprintf("%s %d/%d: wait for every miner mining", a.Action, k+1, o.Trials), "miners", int64(len(ids)))
			if err := waitSeen(ctx, c, len(ids), prog); err != nil {
				return res, fmt.Errorf("%s trial %d: miners back: %w", a.Action, k+1, err)
			}
			prog.Stage(res.Name, fmt.Sprintf("%s %d/%d", a.Action, k+1, o.Trials), "results", int64(len(ids)))
			req := a
			req.MinerIDs = ids
			if req.Action == "set_power_target" {
				req.PowerTargetW += float64(100 * k) // a new target each trial
			}
			tr, err := fanoutOnce(ctx, c, s, req, prog)
			if err != nil {
				return res, fmt.Errorf("%s trial %d: %w", a.Action, k+1, err)
			}
			trials = append(trials, tr)
			if a.Action == "reboot" { // the miners are away for the simulator's reboot before the node sees it
				if err := sleepCtx(ctx, sim.DefaultRebootDuration+time.Second); err != nil {
					return res, err
				}
			}
			prog.Update(int64(len(ids)), fmt.Sprintf("%s: all %d final after %s (%d succeeded, %d failed)", a.Action, len(ids),
				tr.allAcked.Round(time.Millisecond), tr.succeeded, tr.failed))
		}
	}
	addFanout(&res, trials)
	res.note("cloud: the split-mode server in its own process; node: split mode in this process (MaxInFlight %d, MaxCommandsInFlight %d, 0 = the node's default), enrolled over TLS; miners: %s", o.MaxInFlight, o.MaxCommandsInFlight, s.scope())
	res.note("all_acked is from just before POST /api/v1/commands to the command's finished_at; per-miner latency to each result's finished_at (ms timestamps, one clock)")
	res.note("set_power_target: the CGMiner API has no power limit command, so the cgminer driver answers each miner 'unsupported' without miner I/O; it measures the command path cloud → node → result, reboot adds one TCP round trip per miner")
	return res, nil
}

// newCloudResult is newResult for the suites that run a cloud.
func newCloudResult(name string, o Options) Result {
	r := Result{Name: name}
	r.param("miners", o.Miners)
	r.param("interval", o.Interval)
	if o.InProcessSim {
		r.param("simulator", "in process")
	} else {
		r.param("simulator", fmt.Sprintf("%d process(es), ≤ %d miners each", o.simProcesses(), o.MinersPerSim))
	}
	return r
}

// fanoutOnce issues one bulk command and follows it until every miner has a final result.
func fanoutOnce(ctx context.Context, c *cloudProc, s *site, req apiclient.CommandRequest, prog Progress) (fanoutTrial, error) {
	node0, sim0, cloud0 := processCPU(), s.simCPU(), c.cpu()
	busy0, tot0 := machineTicks()
	tr := fanoutTrial{action: req.Action, issued: time.Now()}
	acc, err := c.api.IssueCommand(ctx, req)
	if err != nil {
		return tr, fmt.Errorf("issue: %w", err)
	}
	tr.accepted = time.Since(tr.issued)
	ctx, cancel := context.WithTimeout(ctx, fanoutTimeout)
	defer cancel()
	var cmd apiclient.Command
	if err := until(ctx, fanoutPollEvery, func() (bool, error) {
		var err error
		cmd, err = c.api.CommandSummary(ctx, acc.CommandID)
		if err != nil {
			return false, errors.Join(err, c.alive())
		}
		prog.Update(int64(cmd.Final()), fmt.Sprintf("%d of %d final", cmd.Final(), cmd.Miners))
		return cmd.Done(), nil
	}); err != nil {
		return tr, fmt.Errorf("command %s: %d of %d final: %w", acc.CommandID, cmd.Final(), len(req.MinerIDs), err)
	}
	tr.seenDone = time.Since(tr.issued)
	results, err := fanoutResults(ctx, c, acc.CommandID)
	if err != nil {
		return tr, err
	}
	cmd.Results = results
	tr.nodeCPU, tr.simCPU, tr.cloudCPU = processCPU()-node0, s.simCPU()-sim0, c.cpu()-cloud0
	if busy1, tot1 := machineTicks(); tot1 > tot0 {
		tr.machineBusy = float64(busy1-busy0) / float64(tot1-tot0)
	}
	if cmd.FinishedAt != nil {
		tr.allAcked = cmd.FinishedAt.Sub(tr.issued)
	} else {
		tr.allAcked = tr.seenDone
	}
	for _, r := range cmd.Results {
		switch r.Status {
		case "succeeded":
			tr.succeeded++
		default:
			tr.failed++
			if tr.firstFailure == "" {
				tr.firstFailure = r.MinerID + ": " + r.Status + " " + r.Code + " " + r.Message
			}
		}
		if r.FinishedAt == nil {
			tr.finishedAtMissingFor++
			continue
		}
		tr.latencies = append(tr.latencies, max(0, r.FinishedAt.Sub(tr.issued)))
		if r.StartedAt != nil {
			tr.waits = append(tr.waits, max(0, r.StartedAt.Sub(tr.issued)))
			tr.ios = append(tr.ios, max(0, r.FinishedAt.Sub(*r.StartedAt)))
		}
	}
	return tr, nil
}

// fanoutResults reads every per-miner result of a command, a page at a time.
func fanoutResults(ctx context.Context, c *cloudProc, id string) ([]apiclient.MinerResult, error) {
	var out []apiclient.MinerResult
	after := ""
	for {
		page, err := c.api.CommandResults(ctx, id, after, fanoutPage)
		if err != nil {
			return out, fmt.Errorf("command %s: results after %q: %w", id, after, err)
		}
		out = append(out, page.Results...)
		if page.NextResultsAfter == "" {
			return out, nil
		}
		after = page.NextResultsAfter
	}
}

// addFanout reports each action's trials: the all-acknowledged times (median and worst of the trials), the
// per-miner latency quantiles over every trial's miners, and the results.
func addFanout(r *Result, trials []fanoutTrial) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, a := range fanoutActions {
		var all, seen, accepted, lat, waits, ios, nodeCPU, simCPU, cloudCPU []time.Duration
		var busy []float64
		ok, failed, missing := 0, 0, 0
		first := ""
		for _, t := range trials {
			if t.action != a.Action {
				continue
			}
			all, seen, accepted = append(all, t.allAcked), append(seen, t.seenDone), append(accepted, t.accepted)
			lat = append(lat, t.latencies...)
			waits, ios = append(waits, t.waits...), append(ios, t.ios...)
			nodeCPU, simCPU, cloudCPU = append(nodeCPU, t.nodeCPU), append(simCPU, t.simCPU), append(cloudCPU, t.cloudCPU)
			busy = append(busy, t.machineBusy)
			ok, failed, missing = ok+t.succeeded, failed+t.failed, missing+t.finishedAtMissingFor
			if first == "" {
				first = t.firstFailure
			}
		}
		if len(all) == 0 {
			continue
		}
		p := a.Action + "_"
		r.metric(p+"all_acked_median_ms", ms(quantileOf(all, 0.5)))
		r.metric(p+"all_acked_max_ms", ms(slices.Max(all)))
		r.metric(p+"seen_done_median_ms", ms(quantileOf(seen, 0.5)))
		r.metric(p+"post_accepted_median_ms", ms(quantileOf(accepted, 0.5)))
		r.metric(p+"miner_latency_p50_ms", ms(quantileOf(lat, 0.5)))
		r.metric(p+"miner_latency_p99_ms", ms(quantileOf(lat, 0.99)))
		r.metric(p+"miner_latency_max_ms", ms(quantileOf(lat, 1)))
		if len(waits) > 0 {
			r.metric(p+"miner_started_p50_ms", ms(quantileOf(waits, 0.5)))
			r.metric(p+"miner_started_p99_ms", ms(quantileOf(waits, 0.99)))
			r.metric(p+"miner_io_p50_ms", ms(quantileOf(ios, 0.5)))
			r.metric(p+"miner_io_p99_ms", ms(quantileOf(ios, 0.99)))
		}
		r.metric(p+"node_cpu_median_ms", ms(quantileOf(nodeCPU, 0.5)))
		r.metric(p+"sim_cpu_median_ms", ms(quantileOf(simCPU, 0.5)))
		r.metric(p+"cloud_cpu_median_ms", ms(quantileOf(cloudCPU, 0.5)))
		slices.Sort(busy)
		r.metric(p+"machine_cpu_busy_pct_min", 100*busy[0])
		r.metric(p+"machine_cpu_busy_pct_max", 100*busy[len(busy)-1])
		r.metric(p+"succeeded", float64(ok))
		r.metric(p+"failed", float64(failed))
		if missing > 0 {
			r.note("%s: %d results without finished_at (not in the latency quantiles)", a.Action, missing)
		}
		if first != "" {
			r.note("%s: first failure: %s", a.Action, first)
		}
	}
}

// quantileOf is the q-quantile (nearest rank) of ds, 0 when empty.
func quantileOf(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
