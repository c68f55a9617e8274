package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// phase is what one poller did during one measurement window.
type phase struct {
	poller  string
	miners  int
	window  time.Duration // actual length, for rates
	nominal float64       // polls the schedule asks for on average: miners × window / interval

	lag                        lagStats
	p50, p90, p99, pmax        time.Duration
	cpu, simCPU                time.Duration // this process; the simulator processes
	machineBusy                float64       // share of all cores busy, 0..1
	rssBefore, rssPeak, rssEnd uint64
	heapLive, stack            uint64 // growth over the idle process, after a GC
	goroutines                 int
	nodePolls                  float64 // the node's own counter over the window; NaN for other pollers
	lateBySlice                []int64 // late polls per 10s of the window
	errors                     []string
	profile, memProfile        string // where the window's profiles went, if anywhere
}

// Sampling and shutdown bounds of a measurement.
const (
	rssSampleEvery = 500 * time.Millisecond
	updateEvery    = time.Second
	pollerStopWait = 2 * time.Minute
)

// profiles are where measure writes a window's profiles; "" writes none.
type profiles struct{ cpu, mem string }

// profilesFor names the profiles of poller name: PATH itself when the suite runs one poller (single),
// PATH.NAME otherwise.
func profilesFor(o Options, name string, single bool) profiles {
	at := func(path string) string {
		if path == "" || single {
			return path
		}
		return path + "." + name
	}
	return profiles{cpu: at(o.CPUProfile), mem: at(o.MemProfile)}
}

// measure runs poller p against the site: start, warm up, measure one window, stop.
func measure(ctx context.Context, o Options, s *site, p poller, suite string, prog Progress, prof profiles) (ph phase, err error) {
	ph = phase{poller: p.name(), miners: len(s.devices), profile: prof.cpu}
	rec := newRecorder(s.devices, o.deadline())
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	ph.rssBefore = rssBytes()

	n := int64(len(s.devices))
	prog.Stage(suite, p.name()+": start", "miners", n)
	if err := p.start(o, s.devices, rec); err != nil {
		return ph, err
	}
	prog.Update(n, "")
	stopped := false
	defer func() {
		if !stopped {
			sctx, cancel := context.WithTimeout(context.Background(), pollerStopWait)
			defer cancel()
			err = errors.Join(err, p.stop(sctx))
		}
	}()

	prog.Stage(suite, p.name()+": warm-up", "s", secs(o.Warmup))
	if err := wait(ctx, o.Warmup, s, func(el time.Duration) {
		prog.Update(roundSecs(el), fmt.Sprintf("%d polls", rec.all.Load()))
	}); err != nil {
		return ph, err
	}

	prog.Stage(suite, p.name()+": measure", "s", secs(o.Duration))
	ws := time.Now()
	rec.setWindow(ws, ws.Add(o.Duration))
	cpu0, sim0 := processCPU(), s.simCPU()
	busy0, total0 := machineTicks()
	np, _ := p.(*nodePoller)
	var nodePolls0 float64
	if np != nil {
		nodePolls0 = np.polls()
	}
	stopProfile, perr := startProfile(prof.cpu)
	if perr != nil {
		ph.profile = ""
		ph.errors = append(ph.errors, perr.Error())
	}
	rss := startRSSSampler()

	err = wait(ctx, o.Duration, s, func(el time.Duration) {
		cpu := processCPU() - cpu0
		prog.Update(roundSecs(el), fmt.Sprintf("%d polls, %d failed, p99 %s, %.2f cores",
			rec.polls.Load(), rec.failed.Load(), rec.latency.quantile(0.99).Round(10*time.Microsecond), cpu.Seconds()/el.Seconds()))
	})

	ph.window = time.Since(ws)
	ph.cpu, ph.simCPU = processCPU()-cpu0, s.simCPU()-sim0
	busy1, total1 := machineTicks()
	if total1 > total0 {
		ph.machineBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	ph.nodePolls = nan
	if np != nil {
		ph.nodePolls = np.polls() - nodePolls0
	}
	stopProfile()
	ph.rssPeak, ph.rssEnd = rss.stop()
	if err != nil {
		return ph, err
	}

	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	ph.heapLive = sub(ms1.HeapAlloc, ms0.HeapAlloc)
	ph.stack = sub(ms1.StackInuse, ms0.StackInuse)
	ph.goroutines = runtime.NumGoroutine() - g0
	if prof.mem != "" {
		if err := writeHeapProfile(prof.mem); err != nil {
			ph.errors = append(ph.errors, err.Error())
		} else {
			ph.memProfile = prof.mem
		}
	}

	prog.Stage(suite, p.name()+": stop", "miners", n)
	sctx, cancel := context.WithTimeout(context.Background(), pollerStopWait)
	defer cancel()
	stopped = true
	if err := p.stop(sctx); err != nil {
		return ph, fmt.Errorf("stop %s: %w", p.name(), err)
	}
	prog.Update(n, "")
	ph.lag = rec.summarize()
	ph.lateBySlice = rec.lateBySlice()
	ph.p50, ph.p90, ph.p99 = rec.latency.quantile(0.50), rec.latency.quantile(0.90), rec.latency.quantile(0.99)
	ph.pmax = time.Duration(rec.latency.max.Load())
	ph.nominal = float64(len(s.devices)) * o.Duration.Seconds() / o.Interval.Seconds()
	rec.errMu.Lock()
	ph.errors = append(ph.errors, rec.errors...)
	rec.errMu.Unlock()
	return ph, s.alive()
}

// secs is d in whole seconds, rounded up: a stage's total, for progress.
func secs(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// roundSecs is d in whole seconds, rounded: the part of a stage done, for progress.
func roundSecs(d time.Duration) int64 { return int64(d.Round(time.Second) / time.Second) }

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// wait waits d, calling update about every second, and fails early when ctx ends or a simulator dies.
func wait(ctx context.Context, d time.Duration, s *site, update func(elapsed time.Duration)) error {
	start := time.Now()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(updateEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			update(d)
			return nil
		case <-tick.C:
			if err := s.alive(); err != nil {
				return err
			}
			update(time.Since(start))
		}
	}
}

// startProfile starts a CPU profile into path ("" does nothing) and returns its stop.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil { // e.g. go test -cpuprofile already profiles
		f.Close()
		os.Remove(path)
		return func() {}, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// rssSampler samples VmRSS until stopped.
type rssSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startRSSSampler() *rssSampler {
	r := &rssSampler{done: make(chan struct{}), peak: rssBytes()}
	r.wg.Go(func() {
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				r.peak = max(r.peak, rssBytes())
			}
		}
	})
	return r
}

// stop ends sampling and returns the peak and the current RSS.
func (r *rssSampler) stop() (peak, now uint64) {
	close(r.done)
	r.wg.Wait()
	now = rssBytes()
	return max(r.peak, now), now
}
