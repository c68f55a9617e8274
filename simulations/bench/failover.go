package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// FailoverSuite kills the active member of a warm-standby pair that runs Miners miners and times how long the
// standby takes to make its first successful miner write, with commands flowing through the cloud API all
// along. The cloud is the real server in its own process; the two nodes are real split-mode nodes in this
// process with their pair gossip on loopback, enrolled over TLS, the pair declared through POST
// /api/v1/pairs with the default lease timings; the miners are the simulators in their processes. Each
// trial kills the holder (no lease release, gossip gone without a goodbye), waits for the partner's first
// successful write in its write log, then starts the killed node again and waits for it to stand by, so the
// next trial fails over the other way.
type FailoverSuite struct{}

func (FailoverSuite) Name() string { return "failover" }

func (FailoverSuite) Describe() string {
	return "the active of a warm-standby pair killed: time to the standby's first successful miner write, p50/p99 over trials"
}

// Failover bounds: commands every failoverCommandEvery (one miner each, rotating), a trial given up after
// failoverTimeout, a pair given failoverSettle to settle.
const (
	failoverCommandEvery = 250 * time.Millisecond
	failoverTimeout      = time.Minute
	failoverSettle       = 2 * time.Minute
)

// firstWrites remembers each node's first successful miner write at or after a mark.
type firstWrites struct {
	mu    sync.Mutex
	since time.Time
	first map[string]time.Time // node id → start of its first successful write since the mark
}

func (f *firstWrites) Record(e writelog.Entry) {
	if !e.Wrote() || e.Code != "succeeded" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == nil || e.Start.Before(f.since) {
		return
	}
	if t, ok := f.first[e.Node]; !ok || e.Start.Before(t) {
		f.first[e.Node] = e.Start
	}
}

// mark forgets what was recorded and counts from at.
func (f *firstWrites) mark(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since, f.first = at, map[string]time.Time{}
}

func (f *firstWrites) of(node string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.first[node]
	return t, ok
}

// Run sets up the pair and runs o.Trials kills.
func (FailoverSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = newCloudResult("failover", o)
	res.param("trials", o.Trials)
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

	log := &firstWrites{}
	var nodes [2]*cloudNode
	defer func() {
		var live []*cloudNode
		for _, n := range nodes {
			if n != nil {
				live = append(live, n)
			}
		}
		err = errors.Join(err, closeNodes(live))
	}()
	prog.Stage(res.Name, "enroll both nodes, pair the miners to the first", "nodes", 2)
	for i, name := range []string{"a", "b"} {
		gossip, err := freeLoopbackAddr()
		if err != nil {
			return res, err
		}
		no := cloudNodeOptions{name: "bench-failover-" + name, pollInterval: o.Interval, gossip: gossip, writes: log}
		if i == 0 {
			no.devices = s.devices
		} else {
			no.noPair = true
		}
		if nodes[i], err = startCloudNode(ctx, o, c, no); err != nil {
			return res, err
		}
		prog.Update(int64(i+1), "")
	}
	prog.Stage(res.Name, "every miner reporting", "miners", int64(len(s.devices)))
	if err := waitSeen(ctx, c, len(s.devices), prog); err != nil {
		return res, fmt.Errorf("miners reporting: %w", err)
	}
	ids := make([]string, 0, len(s.devices))
	for _, d := range s.devices {
		ids = append(ids, d.GetMinerId())
	}
	prog.Stage(res.Name, "declare the pair", "", 0)
	var pair struct {
		ID string `json:"id"`
	}
	if err := c.api.Do(ctx, http.MethodPost, "/api/v1/pairs", map[string]any{"site": "bench",
		"members": []string{nodes[0].id, nodes[1].id}, "standby": nodes[1].id, "devices": ids}, &pair); err != nil {
		return res, fmt.Errorf("declare the pair: %w", err)
	}
	holder := 0
	if err := waitPair(ctx, nodes[holder], nodes[1-holder]); err != nil {
		return res, err
	}

	cctx, stopCommands := context.WithCancel(ctx)
	var cmdWG sync.WaitGroup
	var cmdErrs commandErrors
	cmdWG.Go(func() { issueCommands(cctx, c, ids, &cmdErrs) })
	defer func() {
		stopCommands()
		cmdWG.Wait()
	}()

	var took []time.Duration
	for k := range o.Trials {
		active, standby := nodes[holder], nodes[1-holder]
		prog.Stage(res.Name, fmt.Sprintf("trial %d/%d: kill the active", k+1, o.Trials), "", 0)
		at := time.Now()
		log.mark(at)
		if err := active.kill(); err != nil {
			return res, fmt.Errorf("trial %d: kill: %w", k+1, err)
		}
		var first time.Time
		wctx, cancel := context.WithTimeout(ctx, failoverTimeout)
		err := until(wctx, 20*time.Millisecond, func() (bool, error) {
			var ok bool
			first, ok = log.of(standby.id)
			return ok, c.alive()
		})
		cancel()
		if err != nil {
			return res, fmt.Errorf("trial %d: the standby's first write: %w (command errors: %s)", k+1, err, cmdErrs.String())
		}
		took = append(took, first.Sub(at))
		prog.Update(0, fmt.Sprintf("trial %d: first write by the standby %s after the kill", k+1, first.Sub(at).Round(time.Millisecond)))
		prog.Stage(res.Name, fmt.Sprintf("trial %d/%d: start the killed node again", k+1, o.Trials), "", 0)
		if err := active.start(ctx); err != nil {
			return res, fmt.Errorf("trial %d: restart: %w", k+1, err)
		}
		holder = 1 - holder
		if err := waitPair(ctx, nodes[holder], nodes[1-holder]); err != nil {
			return res, fmt.Errorf("trial %d: %w", k+1, err)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.metric("trials", float64(len(took)))
	res.metric("first_write_p50_ms", ms(quantileOf(took, 0.5)))
	res.metric("first_write_p99_ms", ms(quantileOf(took, 0.99)))
	res.metric("first_write_min_ms", ms(quantileOf(took, 0)))
	res.metric("first_write_max_ms", ms(quantileOf(took, 1)))
	res.metric("commands_rejected", float64(cmdErrs.count()))
	res.note("each trial: the holder killed in process (node.Kill: no lease release, gossip gone without a goodbye); time from the kill to the start of the partner's first successful miner write (its write log); a `start` command to one miner every %s through the API", failoverCommandEvery)
	res.note("lease timings: the node and cloud defaults (TTL 6s, renew every 2s, margins 1s); cloud: the real server in its own process; miners: %s", s.scope())
	if e := cmdErrs.String(); e != "" {
		res.note("command errors: %s", e)
	}
	return res, nil
}

// waitPair waits until holder holds the lease as the cloud granted it and standby stands by seeing it alive.
func waitPair(ctx context.Context, holder, standby *cloudNode) error {
	ctx, cancel := context.WithTimeout(ctx, failoverSettle)
	defer cancel()
	var h, s string
	err := until(ctx, 100*time.Millisecond, func() (bool, error) {
		hs, err1 := holder.p.Node.LeaseStatus(ctx)
		ss, err2 := standby.p.Node.LeaseStatus(ctx)
		if err1 != nil || err2 != nil {
			return false, nil
		}
		h = fmt.Sprintf("%+v", hs.Lease)
		s = fmt.Sprintf("peer %s, holder %s, %+v", ss.PeerState, ss.Holder, ss.Lease)
		return hs.Lease.Mode == lease.ModeLease && hs.Lease.Holder == holder.id &&
			ss.Paired && ss.PeerState == "alive" && ss.Lease.Mode == lease.ModeStandby && ss.Holder == holder.id, nil
	})
	if err != nil {
		return fmt.Errorf("pair not settled (holder %s: %s; standby %s: %s): %w", holder.id, h, standby.id, s, err)
	}
	return nil
}

// issueCommands posts a `start` to one miner after another until ctx ends.
func issueCommands(ctx context.Context, c *cloudProc, ids []string, errs *commandErrors) {
	t := time.NewTicker(failoverCommandEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.api.IssueCommand(ctx, apiclient.CommandRequest{Action: "start", MinerIDs: []string{ids[i%len(ids)]}}); err != nil && ctx.Err() == nil {
			errs.add(err)
		}
	}
}

// commandErrors keeps the first command errors.
type commandErrors struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (e *commandErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.first) < keepErrors {
		e.first = append(e.first, err.Error())
	}
}

func (e *commandErrors) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *commandErrors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.first)
}

// freeLoopbackAddr returns a loopback address with a port free right now (gossip must advertise a concrete
// port).
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
