package discovery

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Scanner probes addresses for miners. It holds no connections between scans and is safe for concurrent
// use: every scan gets its own transport, closed when it ends.
type Scanner struct {
	cfg Config
}

// NewScanner validates cfg; zero fields take their defaults.
func NewScanner(cfg Config) (*Scanner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scanner{cfg: cfg.withDefaults()}, nil
}

// Config returns the scanner's configuration with defaults filled in.
func (s *Scanner) Config() Config { return s.cfg }

// Plan is a validated scan: its targets parsed and its ports settled. Make one with Scanner.Plan.
type Plan struct {
	req     Request
	targets *Targets
	ports   Ports
}

// ScanID returns the request's scan id.
func (p *Plan) ScanID() string { return p.req.ScanID }

// Targets returns the addresses the scan covers.
func (p *Plan) Targets() *Targets { return p.targets }

// Ports returns the ports probed per protocol, defaults filled in.
func (p *Plan) Ports() Ports { return p.ports }

// Plan validates req and parses its targets without touching the network, so a bad request is refused before
// anything starts. Errors wrap ErrBadRequest or the target errors of ParseTargets.
func (s *Scanner) Plan(req Request) (*Plan, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	t, err := ParseTargets(req.Targets, Limits{MaxAddresses: s.cfg.MaxAddresses, AllowPublic: s.cfg.AllowPublic})
	if err != nil {
		return nil, err
	}
	req.Targets = slices.Clone(req.Targets)
	req.Protocols = slices.Clone(req.Protocols)
	return &Plan{req: req, targets: t, ports: req.Ports.withDefaults(s.cfg.Ports)}, nil
}

// Scan plans and runs req; see Plan and Run.
func (s *Scanner) Scan(ctx context.Context, req Request, onUpdate func(Update)) (*Result, error) {
	p, err := s.Plan(req)
	if err != nil {
		return nil, err
	}
	return s.Run(ctx, p, onUpdate), nil
}

// Run probes every address of p with at most Config.Concurrency addresses in flight, and returns when all
// are done or ctx is cancelled (then Result.Canceled is set and the addresses cut short are not counted).
// onUpdate, when not nil, gets the first report at once, then at most one per Config.ProgressInterval, and
// the last when every address is probed; calls never overlap, and must return quickly.
func (s *Scanner) Run(ctx context.Context, p *Plan, onUpdate func(Update)) *Result {
	dialer := &net.Dialer{Timeout: s.cfg.ProbeTimeout}
	tr := newTransport(s.cfg, dialer)
	defer tr.CloseIdleConnections()
	r := &run{
		cfg: s.cfg, req: &p.req, ports: p.ports, dialer: dialer, transport: tr,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:    s.cfg.Logger.With(slog.String("scan", p.req.ScanID)),
		rep:    reporter{onUpdate: onUpdate, interval: s.cfg.ProgressInterval},
	}
	started, wallStart := s.cfg.Clock.Now(), time.Now()
	total := p.targets.Len()
	r.rep.progress = Progress{ScanID: p.req.ScanID, Total: total}
	r.rep.emit(started, true)

	addrs := make(chan netip.Addr)
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, total) {
		wg.Go(func() {
			for a := range addrs {
				found, errs := r.probeAddr(ctx, a)
				if ctx.Err() != nil {
					continue // cut short: neither probed nor reported
				}
				r.record(a, found, errs)
			}
		})
	}
feed:
	for a := range p.targets.All() {
		select {
		case addrs <- a:
		case <-ctx.Done():
			break feed
		}
	}
	close(addrs)
	wg.Wait()

	res := r.result(started, s.cfg.Clock.Now(), ctx.Err() != nil)
	s.cfg.Metrics.scan(res, time.Since(wallStart))
	r.log.Info("discovery scan finished", slog.Int("total", res.Total), slog.Int("probed", res.Probed),
		slog.Int("found", len(res.Found)), slog.Int("errors", len(res.Errors)), slog.Bool("canceled", res.Canceled),
		slog.Duration("took", res.Finished.Sub(res.Started)))
	return res
}

// run is one scan in flight.
type run struct {
	cfg       Config
	req       *Request
	ports     Ports
	dialer    *net.Dialer
	transport *http.Transport
	client    *http.Client
	log       *slog.Logger

	mu   sync.Mutex
	hits []hit
	errs []TargetError
	rep  reporter
}

type hit struct {
	addr netip.Addr
	f    *Found
}

// probeAddr runs every probe of one address in parallel and decides what the address holds. A panic
// anywhere in it is this address's error, never the scan's.
func (r *run) probeAddr(ctx context.Context, addr netip.Addr) (found *Found, errs []TargetError) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("discovery probe panicked", slog.String("addr", addr.String()), slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
			found, errs = nil, []TargetError{{Addr: addr, Err: fmt.Errorf("internal error while probing (%v): %w", v, ErrHostile)}}
		}
	}()
	var cgPorts, webPorts []int
	if r.req.wants(pb.Protocol_PROTOCOL_CGMINER) || r.req.wants(pb.Protocol_PROTOCOL_ANTMINER) || r.req.wants(pb.Protocol_PROTOCOL_WHATSMINER) {
		cgPorts = r.ports.CGMiner
	}
	if r.req.wants(pb.Protocol_PROTOCOL_PROTO) {
		webPorts = append(webPorts, r.ports.Proto...)
	}
	if r.req.wants(pb.Protocol_PROTOCOL_ANTMINER) {
		for _, p := range r.ports.AntminerWeb {
			if !slices.Contains(webPorts, p) {
				webPorts = append(webPorts, p)
			}
		}
	}
	cgs := make([]cgEvidence, len(cgPorts))
	webs := make([]webEvidence, len(webPorts))
	var wg sync.WaitGroup
	var panicked any
	var pmu sync.Mutex
	guard := func(f func()) func() {
		return func() {
			defer func() {
				if v := recover(); v != nil {
					pmu.Lock()
					panicked = v
					pmu.Unlock()
				}
			}()
			f()
		}
	}
	for i, p := range cgPorts {
		wg.Go(guard(func() { cgs[i] = r.probeCGMiner(ctx, addr, p) }))
	}
	for i, p := range webPorts {
		wg.Go(guard(func() { webs[i] = r.probeWeb(ctx, addr, p) }))
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	for _, c := range cgs {
		r.cfg.Metrics.probe("cgminer", c.ok, c.err)
	}
	for _, w := range webs {
		r.cfg.Metrics.probe("web", w.proto != nil || w.ant != nil, w.err)
	}
	return decide(addr, r.req, r.ports, cgs, webs)
}

// record adds one address's outcome and reports progress when due.
func (r *run) record(addr netip.Addr, found *Found, errs []TargetError) {
	for _, e := range errs {
		if e.Unknown() {
			r.log.Debug("discovery: not a miner", slog.String("addr", addr.String()), slog.Int("port", e.Port), slog.String("error", e.Err.Error()))
		} else {
			r.log.Warn("discovery: hostile or unreadable reply", slog.String("addr", addr.String()), slog.Int("port", e.Port), slog.String("error", e.Err.Error()))
		}
	}
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.progress.Probed++
	if found != nil {
		r.hits = append(r.hits, hit{addr, found})
		r.rep.progress.Found++
		r.rep.found = append(r.rep.found, *found)
	}
	if len(errs) > 0 {
		r.errs = append(r.errs, errs...)
		r.rep.progress.Errors++
		r.rep.errs = append(r.rep.errs, errs...)
	}
	r.rep.emit(now, r.rep.progress.Probed == r.rep.progress.Total)
}

// result sorts the outcome by address and keeps one device per identity (the lowest address's).
func (r *run) result(started, finished time.Time, canceled bool) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortFunc(r.hits, func(a, b hit) int { return a.addr.Compare(b.addr) })
	res := &Result{ScanID: r.req.ScanID, Started: started, Finished: finished, Total: r.rep.progress.Total,
		Probed: r.rep.progress.Probed, Canceled: canceled}
	seen := make(map[string]netip.Addr, len(r.hits))
	errs := slices.Clone(r.errs)
	for _, h := range r.hits {
		id := h.f.Device.GetMinerId()
		if first, dup := seen[id]; dup {
			errs = append(errs, TargetError{Addr: h.addr, Err: fmt.Errorf("%s (%s at %s) also answers at %s: %w",
				id, h.f.Device.GetModel(), h.f.Device.GetAddress(), first, ErrDuplicateIdentity)})
			continue
		}
		seen[id] = h.addr
		res.Found = append(res.Found, *h.f)
	}
	slices.SortStableFunc(errs, func(a, b TargetError) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	res.Errors = errs
	return res
}

// reporter throttles progress reports. Its fields are guarded by run.mu.
type reporter struct {
	onUpdate func(Update)
	interval time.Duration
	progress Progress
	found    []Found
	errs     []TargetError
	last     time.Time
	sent     bool
}

// emit reports when forced or when the interval has passed since the last report.
func (p *reporter) emit(now time.Time, force bool) {
	if p.onUpdate == nil {
		p.found, p.errs = nil, nil
		return
	}
	if !force && p.sent && now.Sub(p.last) < p.interval {
		return
	}
	u := Update{Progress: p.progress, Found: p.found, Errors: p.errs}
	p.found, p.errs = nil, nil
	p.last, p.sent = now, true
	p.onUpdate(u)
}
