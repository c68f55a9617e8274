package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node/spool"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/protobuf/proto"
)

// SpoolSuite measures the node's offline spool (node/spool, a real Badger directory with synced writes) as the
// TelemetryBatcher drives it while the cloud is unreachable: SpoolSpan of site time for Miners miners at
// Interval, in batches of 500 (one synced write each), then a reopen (what a restart costs) and the replay
// through a window of 8 batches, each acked as the cloud would.
type SpoolSuite struct{}

func (SpoolSuite) Name() string { return "spool" }

func (SpoolSuite) Describe() string {
	return "the node's offline spool on a real Badger dir: write and replay rates, reopen time, bytes per miner-hour"
}

// Spool workload constants: the batcher's batch size and in-flight window (node/telemetry defaults) and how
// many real simulator replies the samples are modelled on.
const (
	spoolBatch     = 500
	spoolWindow    = 8
	spoolTemplates = 20
)

// Run makes the samples' templates from real polls, then spools, reopens and replays.
func (SpoolSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = Result{Name: "spool"}
	res.param("miners", o.Miners)
	res.param("interval", o.Interval)
	res.param("span", o.SpoolSpan)
	res.param("batch", spoolBatch)
	res.param("replay_window", spoolWindow)
	prog.Stage(res.Name, "poll simulated miners for sample templates", "miners", spoolTemplates)
	tmpl, err := sampleTemplates(ctx, o)
	if err != nil {
		return res, err
	}
	base := o.DataDir
	if base == "" {
		tmp, err := os.MkdirTemp("", "hashfleet-bench-spool-")
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
		base = tmp
	}
	sr, err := runSpool(ctx, o, filepath.Join(base, spool.DirName), tmpl, prog)
	if err != nil {
		return res, err
	}
	sr.addTo(&res, o)
	res.note("samples: %d real replies of the simulated miners (cgminer driver), re-stamped per miner and tick", len(tmpl))
	res.note("write times Append only (making the samples is not timed); replay times Next + Ack through the window; write CPU includes making the samples (clone + re-stamp), replay CPU is Next + Ack only")
	return res, nil
}

// spoolRun is what runSpool measured.
type spoolRun struct {
	samples, batches   int
	sampleBytes        int64 // proto size of every sample written
	write, replay      time.Duration
	writeCPU, replayCP time.Duration
	appendHist         histogram
	reopen             time.Duration
	logical, disk      int64
	dropped            int
}

// sampleTemplates polls a few in-process simulated miners once each through the cgminer driver.
func sampleTemplates(ctx context.Context, o Options) ([]*pb.Telemetry, error) {
	f, err := sim.Start(sim.Config{Count: spoolTemplates, PerMinerIP: true, BaseIP: netBase(o.FirstNet), Port: o.Port, Seed: o.Seed})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSimulator, err)
	}
	defer f.Close()
	var out []*pb.Telemetry
	for _, d := range f.Devices() {
		t, err := cgminer.New(d, cgminer.Config{}).Poll(ctx)
		if err != nil {
			return nil, fmt.Errorf("poll %s: %w", d.GetMinerId(), err)
		}
		out = append(out, t)
	}
	return out, nil
}

// spoolSite makes the samples of one tick after another, batched as the batcher batches them.
type spoolSite struct {
	tmpl  []*pb.Telemetry
	ids   []string
	at    time.Time
	step  time.Duration
	miner int // next miner of the current tick
	seq   uint64
}

func newSpoolSite(o Options, tmpl []*pb.Telemetry, start time.Time) *spoolSite {
	s := &spoolSite{tmpl: tmpl, at: start, step: o.Interval, ids: make([]string, o.Miners)}
	for i := range s.ids {
		s.ids[i] = fmt.Sprintf("sim-%06d", i)
	}
	return s
}

// batch returns the next batch of up to spoolBatch samples; a tick's last batch may be short, as when the
// batcher's flush interval closes it.
func (s *spoolSite) batch() telemetry.Batch {
	n := min(spoolBatch, len(s.ids)-s.miner)
	b := &pb.TelemetryBatch{NodeId: "bench", Samples: make([]*pb.Telemetry, 0, n)}
	for range n {
		i := s.miner
		t := proto.Clone(s.tmpl[i%len(s.tmpl)]).(*pb.Telemetry)
		t.MinerId = s.ids[i]
		t.ObservedAtUnixMs = s.at.UnixMilli() + int64(i)%s.step.Milliseconds()
		wobble := 1 + 0.002*float64((int(s.at.Unix())+i)%11-5)
		t.Hashrate_5SThs *= wobble
		t.PowerW *= wobble
		t.UptimeS += int64(s.at.Sub(time.Unix(0, 0)).Seconds()) % 86400
		b.Samples = append(b.Samples, t)
		s.miner++
	}
	if s.miner == len(s.ids) {
		s.miner = 0
		s.at = s.at.Add(s.step)
	}
	s.seq++
	b.BatchSeq = s.seq
	return telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: s.seq, Telemetry: b}
}

func runSpool(ctx context.Context, o Options, dir string, tmpl []*pb.Telemetry, prog Progress) (r *spoolRun, err error) {
	r = &spoolRun{}
	ticks := int(o.SpoolSpan / o.Interval)
	total := int64(ticks) * int64(o.Miners)
	cfg := spool.DefaultConfig()
	cfg.Dir, cfg.Logger = dir, quietLogger(o.Logger)
	// Room for the whole span raw (≈300 bytes per sample held), so that the run measures writing and not
	// downsampling.
	cfg.MaxBytes = max(cfg.MaxBytes, 2*total*600)
	s, err := spool.Open(cfg)
	if err != nil {
		return r, fmt.Errorf("open spool: %w", err)
	}
	defer func() {
		if s != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	site := newSpoolSite(o, tmpl, start)
	end := start.Add(time.Duration(ticks) * o.Interval)
	prog.Stage("spool", fmt.Sprintf("write %s of %d miners", o.SpoolSpan, o.Miners), "samples", total)
	cpu0 := processCPU()
	for site.at.Before(end) {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		b := site.batch()
		for _, t := range b.Telemetry.GetSamples() {
			r.sampleBytes += int64(proto.Size(t))
		}
		t0 := time.Now()
		dropped, err := s.Append(b)
		d := time.Since(t0)
		if err != nil {
			return r, fmt.Errorf("append batch %d: %w", b.Seq, err)
		}
		r.write += d
		r.appendHist.add(d)
		r.dropped += len(dropped)
		r.samples += len(b.Telemetry.GetSamples())
		r.batches++
		if r.batches%20 == 0 {
			prog.Update(int64(r.samples), fmt.Sprintf("%d samples, %.0f/s", r.samples, float64(r.samples)/r.write.Seconds()))
		}
	}
	r.writeCPU = processCPU() - cpu0
	r.logical = s.Stats().Bytes
	err = s.Close()
	s = nil
	if err != nil {
		return r, fmt.Errorf("close spool: %w", err)
	}
	prog.Stage("spool", "reopen", "", 0)
	t0 := time.Now()
	s, err = spool.Open(cfg)
	if err != nil {
		return r, fmt.Errorf("reopen spool: %w", err)
	}
	r.reopen = time.Since(t0)
	r.disk = diskUsage(dir)

	prog.Stage("spool", "replay", "samples", int64(r.samples))
	cpu0 = processCPU()
	t0 = time.Now()
	var inflight []uint64
	var after uint64
	replayed := 0
	for {
		for len(inflight) < spoolWindow {
			b, ok, err := s.Next(telemetry.KindTelemetry, after)
			if err != nil {
				return r, fmt.Errorf("replay after %d: %w", after, err)
			}
			if !ok {
				break
			}
			replayed += len(b.Telemetry.GetSamples())
			inflight = append(inflight, b.Seq)
			after = b.Seq
		}
		if len(inflight) == 0 {
			break
		}
		if _, err := s.Ack(telemetry.KindTelemetry, inflight[0]); err != nil {
			return r, fmt.Errorf("ack %d: %w", inflight[0], err)
		}
		inflight = inflight[1:]
		if replayed%(100*spoolBatch) == 0 {
			prog.Update(int64(replayed), "")
		}
	}
	r.replay = time.Since(t0)
	r.replayCP = processCPU() - cpu0
	prog.Update(int64(replayed), fmt.Sprintf("%d samples replayed in %s", replayed, r.replay.Round(time.Millisecond)))
	if replayed != r.samples {
		return r, fmt.Errorf("replayed %d samples, wrote %d", replayed, r.samples)
	}
	if b, _ := s.Len(telemetry.KindTelemetry); b != 0 {
		return r, fmt.Errorf("%d batches left after the replay", b)
	}
	return r, nil
}

func (r *spoolRun) addTo(res *Result, o Options) {
	minerHours := float64(o.Miners) * float64(r.samples/max(o.Miners, 1)) * o.Interval.Hours()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.metric("samples", float64(r.samples))
	res.metric("batches", float64(r.batches))
	res.metric("write_samples_per_s", float64(r.samples)/r.write.Seconds())
	res.metric("write_batches_per_s", float64(r.batches)/r.write.Seconds())
	res.metric("append_p50_ms", ms(r.appendHist.quantile(0.5)))
	res.metric("append_p99_ms", ms(r.appendHist.quantile(0.99)))
	res.metric("append_max_ms", ms(time.Duration(r.appendHist.max.Load())))
	res.metric("write_cpu_ms_per_1k_samples", ms(r.writeCPU)/float64(r.samples)*1000)
	res.metric("reopen_ms", ms(r.reopen))
	res.metric("replay_samples_per_s", float64(r.samples)/r.replay.Seconds())
	res.metric("replay_cpu_ms_per_1k_samples", ms(r.replayCP)/float64(r.samples)*1000)
	res.metric("sample_proto_bytes", float64(r.sampleBytes)/float64(r.samples))
	res.metric("bytes_per_miner_hour_logical", float64(r.logical)/minerHours)
	res.metric("bytes_per_miner_hour_disk", float64(r.disk)/minerHours)
	res.metric("site_minutes_per_write_second", o.SpoolSpan.Minutes()/r.write.Seconds())
	res.metric("dropped_batches", float64(r.dropped))
}

// diskUsage is the bytes dir's files occupy (allocated blocks: Badger preallocates sparse logs).
func diskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		i, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := i.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += i.Size()
		}
		return nil
	})
	return n
}
