package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"google.golang.org/protobuf/proto"
)

// IngestSuite is telemetry from Nodes nodes sharing Miners miners into one cloud. The cloud is the real
// split-mode server in its own process (its CPU measured alone). The nodes are real split-mode nodes in this
// process, enrolled over the TLS gateway, each with its miner actors, telemetry batcher, spool and uplink;
// only their drivers are synthetic: a poll returns a real simulator reply (re-stamped) without socket I/O,
// so that 50,000 miners fit on the machine next to the cloud. A few probe miners measure the end-to-end
// latency: from the poll (the sample's observed_at) to GET /api/v1/miners/{id} showing it.
type IngestSuite struct{}

func (IngestSuite) Name() string { return "ingest" }

func (IngestSuite) Describe() string {
	return "telemetry from N nodes × M miners into the cloud: samples/s ingested, poll → queryable p50/p99, cloud CPU per 1,000 samples"
}

// Probing: how many miners, how often a pending probe asks the API.
const (
	ingestProbes     = 20
	ingestProbeEvery = 20 * time.Millisecond
	ingestProbeLimit = 30 * time.Second // a probe not seen by then counts as lost
)

// Run starts the cloud, the nodes, waits until every miner reports, then measures one window.
func (IngestSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = Result{Name: "ingest"}
	res.param("nodes", o.Nodes)
	res.param("miners", o.Miners)
	res.param("interval", o.Interval)
	res.param("warmup", o.Warmup)
	res.param("duration", o.Duration)
	prog.Stage(res.Name, "poll simulated miners for sample templates", "miners", spoolTemplates)
	tmpl, err := sampleTemplates(ctx, o)
	if err != nil {
		return res, err
	}
	prog.Stage(res.Name, "start the cloud", "", 0)
	oc := o
	oc.CPUProfile = "" // the cloud's profiles cover the measurement windows (cloudProfile), not the whole run
	c, err := startCloud(ctx, oc)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, c.Close()) }()

	pr := newProber(c)
	syn := &synthetic{tmpl: tmpl, probes: map[string]bool{}, probe: pr.polled}
	probeEvery := max(1, o.Miners/ingestProbes)
	per := o.Miners / o.Nodes
	var nodes []*cloudNode
	defer func() { err = errors.Join(err, closeNodes(nodes)) }()
	prog.Stage(res.Name, fmt.Sprintf("enroll %d nodes and pair their miners", o.Nodes), "nodes", int64(o.Nodes))
	// Every node's devices and the probes are chosen before any node starts: the drivers read the probe set.
	devsOf := make([][]*pb.Device, o.Nodes)
	total := 0
	for k := range o.Nodes {
		count := per
		if k == o.Nodes-1 {
			count = o.Miners - per*(o.Nodes-1)
		}
		devs := make([]*pb.Device, count)
		for i := range devs {
			devs[i] = &pb.Device{MinerId: fmt.Sprintf("n%02d-%06d", k, i), Address: fmt.Sprintf("127.0.0.1:%d", 1+i%60000),
				Protocol: pb.Protocol_PROTOCOL_CGMINER, Model: tmpl[i%len(tmpl)].GetModel()}
			if (total+i)%probeEvery == 0 {
				syn.probes[devs[i].GetMinerId()] = true
			}
		}
		devsOf[k] = devs
		total += count
	}
	for k, devs := range devsOf {
		n, err := startCloudNode(ctx, o, c, cloudNodeOptions{name: fmt.Sprintf("bench-ingest-%02d", k), devices: devs,
			pollInterval: o.Interval, wrap: syn.factory})
		if n != nil {
			nodes = append(nodes, n)
		}
		if err != nil {
			return res, err
		}
		prog.Update(int64(k+1), fmt.Sprintf("node %d: %d miners", k+1, len(devs)))
	}
	prog.Stage(res.Name, "every miner reporting", "miners", int64(total))
	if err := waitSeen(ctx, c, total, prog); err != nil {
		return res, fmt.Errorf("miners reporting: %w", err)
	}
	prog.Stage(res.Name, "warm-up", "s", secs(o.Warmup))
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		return res, err
	}

	// The quiet window: ingest alone, no API calls, so its cloud CPU is the ingest path's.
	prog.Stage(res.Name, "measure without probes", "s", secs(o.Duration))
	q, err := ingestWindow(ctx, c, o.Duration, cloudProfile(o, "cloud-quiet"), nil, prog)
	if err != nil {
		return res, err
	}

	prog.Stage(res.Name, "measure", "s", secs(o.Duration))
	polls0 := syn.polls()
	self0 := processCPU()
	stopProfile, perr := startProfile(profilesFor(o, "node", false).cpu)
	if perr != nil {
		res.note("%v", perr)
	}
	pctx, stopProbe := context.WithCancel(ctx)
	w, werr := ingestWindow(ctx, c, o.Duration, cloudProfile(o, "cloud"), func(ws time.Time) { pr.start(pctx, ws) }, prog)
	stopProfile()
	selfCPU := processCPU() - self0
	polls := syn.polls() - polls0
	pr.closeWindow()
	stopProbe()
	pr.wait()
	if werr != nil {
		return res, werr
	}
	window := w.window
	applied := w.applied
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.metric("samples_applied", applied)
	res.metric("samples_received", w.received)
	res.metric("samples_per_s", applied/window.Seconds())
	res.metric("samples_due_per_s", float64(total)/o.Interval.Seconds())
	res.metric("polls_per_s", float64(polls)/window.Seconds())
	res.metric("batches_per_s", w.batches/window.Seconds())
	res.metric("samples_per_batch", ratio(w.received, w.batches))
	pmax := time.Duration(pr.hist.max.Load())
	res.metric("e2e_latency_p50_ms", ms(min(pr.hist.quantile(0.5), pmax)))
	res.metric("e2e_latency_p90_ms", ms(min(pr.hist.quantile(0.9), pmax)))
	res.metric("e2e_latency_p99_ms", ms(min(pr.hist.quantile(0.99), pmax)))
	res.metric("e2e_latency_max_ms", ms(pmax))
	res.metric("e2e_probes", float64(pr.hist.count()))
	res.metric("e2e_probes_lost", float64(pr.lost))
	res.metric("probe_api_calls_per_s", float64(pr.calls.Load())/window.Seconds())
	res.metric("cloud_cpu_cores", w.cpu.Seconds()/window.Seconds())
	res.metric("cloud_cpu_ms_per_1k_samples", ratio(ms(w.cpu)*1000, applied))
	res.metric("samples_per_s_no_probes", q.applied/q.window.Seconds())
	res.metric("cloud_cpu_cores_no_probes", q.cpu.Seconds()/q.window.Seconds())
	res.metric("cloud_cpu_ms_per_1k_samples_no_probes", ratio(ms(q.cpu)*1000, q.applied))
	rssPeak := max(q.rssPeak, w.rssPeak)
	res.metric("cloud_rss_peak_mb", float64(rssPeak)/mb)
	res.metric("nodes_cpu_cores", selfCPU.Seconds()/window.Seconds())
	if w.ticks > 0 {
		res.metric("machine_cpu_busy_pct", 100*w.busy)
	}
	if q.ticks > 0 {
		res.metric("machine_cpu_busy_pct_no_probes", 100*q.busy)
	}
	for _, e := range []error{q.profileErr, w.profileErr} {
		if e != nil {
			res.note("%v", e)
		}
	}
	res.note("nodes: %d real split-mode nodes in this process (miner actors, batcher, spool, uplink over TLS gRPC) with synthetic drivers (a real simulator reply re-stamped, no socket I/O); cloud: the real server in its own process", o.Nodes)
	res.note("e2e latency: %d probe miners; from the poll (observed_at) to GET /api/v1/miners/{id} returning it, asked every %s, so figures are up to %s high; the probes' API calls are in the cloud's CPU",
		len(syn.probes), ingestProbeEvery, ingestProbeEvery)
	res.note("*_no_probes: a window of the same length just before, without probes (no API calls): the ingest path's own cost")
	res.note("nodes_cpu_cores includes the probing client")
	return res, nil
}

// windowFigures are the cloud's figures over one measurement window.
type windowFigures struct {
	window                     time.Duration
	applied, received, batches float64
	cpu                        time.Duration
	rssPeak                    uint64
	busy                       float64 // share of the machine's CPU busy (0–1), if ticks > 0
	ticks                      uint64
	profileErr                 error
}

// ingestWindow measures the cloud over d: samples applied and received, batches, CPU, RSS peak, the
// machine's load; with a CPU profile of the cloud into profile ("" for none). started, if set, is called
// with the window's start.
func ingestWindow(ctx context.Context, c *cloudProc, d time.Duration, profile string, started func(time.Time), prog Progress) (windowFigures, error) {
	var f windowFigures
	applied0, err := c.counter(ctx, "hashfleet_server_telemetry_samples_total", `result="applied"`)
	if err != nil {
		return f, err
	}
	all0, _ := c.counter(ctx, "hashfleet_server_telemetry_samples_total", "")
	batches0, _ := c.counter(ctx, "hashfleet_server_ingest_batches_total", `kind="telemetry"`)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prof := c.profileWindow(pctx, d, profile)
	cpu0 := c.cpu()
	busy0, tot0 := machineTicks()
	ws := time.Now()
	if started != nil {
		started(ws)
	}
	f.rssPeak = c.rss()
	werr := wait(ctx, d, &site{}, func(el time.Duration) {
		f.rssPeak = max(f.rssPeak, c.rss())
		prog.Update(roundSecs(el), fmt.Sprintf("cloud %.2f cores", (c.cpu()-cpu0).Seconds()/el.Seconds()))
	})
	f.window = time.Since(ws)
	f.cpu = c.cpu() - cpu0
	busy1, tot1 := machineTicks()
	applied1, err := c.counter(ctx, "hashfleet_server_telemetry_samples_total", `result="applied"`)
	all1, _ := c.counter(ctx, "hashfleet_server_telemetry_samples_total", "")
	batches1, _ := c.counter(ctx, "hashfleet_server_ingest_batches_total", `kind="telemetry"`)
	if werr == nil {
		f.profileErr = prof.wait() // the profile covers whole seconds: at most a second more
	}
	cancel()
	_ = prof.wait()
	if werr != nil {
		return f, werr
	}
	if err != nil {
		return f, err
	}
	f.applied, f.received, f.batches = applied1-applied0, all1-all0, batches1-batches0
	if tot1 > tot0 {
		f.ticks = tot1 - tot0
		f.busy = float64(busy1-busy0) / float64(tot1-tot0)
	}
	return f, nil
}

// cloudProfile is where a cloud window's profile goes: the --cpuprofile path with suffix name, or "".
func cloudProfile(o Options, name string) string {
	if o.CPUProfile == "" {
		return ""
	}
	return o.CPUProfile + "." + name
}

// synthetic makes the ingest suite's drivers.
type synthetic struct {
	tmpl   []*pb.Telemetry
	probes map[string]bool // written before the nodes start, read-only after
	probe  func(id string, observedMs int64)
	mu     sync.Mutex
	n      int64
}

func (s *synthetic) factory(func(*pb.Device) (miners.Driver, error)) func(*pb.Device) (miners.Driver, error) {
	return func(d *pb.Device) (miners.Driver, error) {
		var h uint32
		for _, c := range d.GetMinerId() {
			h = h*31 + uint32(c)
		}
		return &synthDriver{s: s, id: d.GetMinerId(), tmpl: s.tmpl[int(h)%len(s.tmpl)], probe: s.probes[d.GetMinerId()]}, nil
	}
}

func (s *synthetic) polls() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// synthDriver answers polls with its template, re-stamped, and refuses commands.
type synthDriver struct {
	s     *synthetic
	id    string
	tmpl  *pb.Telemetry
	probe bool
}

func (d *synthDriver) Poll(context.Context) (*pb.Telemetry, error) {
	t := proto.Clone(d.tmpl).(*pb.Telemetry)
	t.MinerId = d.id
	t.ObservedAtUnixMs = time.Now().UnixMilli()
	d.s.mu.Lock()
	d.s.n++
	d.s.mu.Unlock()
	if d.probe {
		d.s.probe(d.id, t.ObservedAtUnixMs)
	}
	return t, nil
}

func (d *synthDriver) Execute(context.Context, *pb.CommandSpec) (string, error) {
	return "", fmt.Errorf("%w: synthetic miner", miners.ErrUnsupported)
}

func (d *synthDriver) Close() error { return nil }

// prober follows probe miners' polls until the API shows them.
type prober struct {
	c       *cloudProc
	mu      sync.Mutex
	pending map[string]int64 // miner → observed_at (ms) of its poll in the window not yet seen
	from    int64            // window start (ms); polls before it are not probed
	closed  bool             // window over: no new probes
	hist    histogram
	lost    int
	calls   atomic.Int64 // API calls made
	wg      sync.WaitGroup
}

func newProber(c *cloudProc) *prober { return &prober{c: c, pending: map[string]int64{}, from: -1} }

// polled is called by a probe miner's driver at each poll.
func (p *prober) polled(id string, observedMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.from < 0 || p.closed || observedMs < p.from {
		return
	}
	if _, ok := p.pending[id]; !ok { // a newer poll of a miner not yet seen waits for the older one
		p.pending[id] = observedMs
	}
}

func (p *prober) start(ctx context.Context, ws time.Time) {
	p.mu.Lock()
	p.from = ws.UnixMilli()
	p.mu.Unlock()
	p.wg.Go(func() { p.loop(ctx) })
}

func (p *prober) closeWindow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

func (p *prober) wait() { p.wg.Wait() }

func (p *prober) loop(ctx context.Context) {
	t := time.NewTicker(ingestProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done(): // probes still pending are cut off by the window's end, not lost
			return
		case <-t.C:
		}
		p.mu.Lock()
		ids := make(map[string]int64, len(p.pending))
		for id, at := range p.pending {
			ids[id] = at
		}
		p.mu.Unlock()
		for id, at := range ids {
			var m struct {
				LastSeen *time.Time `json:"last_seen"`
			}
			err := p.c.api.Do(ctx, http.MethodGet, "/api/v1/miners/"+id, nil, &m)
			p.calls.Add(1)
			now := time.Now()
			seen := err == nil && m.LastSeen != nil && m.LastSeen.UnixMilli() >= at
			expired := now.UnixMilli()-at > ingestProbeLimit.Milliseconds()
			if !seen && !expired {
				continue
			}
			p.mu.Lock()
			delete(p.pending, id)
			if seen {
				p.hist.add(now.Sub(time.UnixMilli(at)))
			} else {
				p.lost++
			}
			p.mu.Unlock()
		}
	}
}
