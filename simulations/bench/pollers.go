package bench

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/node"
	"github.com/prometheus/client_golang/prometheus"
)

// poller is one way of polling every miner of a site on the schedule of Options (Interval ± Jitter, first
// polls spread over one interval), reporting each poll to the recorder.
type poller interface {
	name() string
	start(o Options, devs []*pb.Device, rec *recorder) error
	// stop ends every goroutine the poller started.
	stop(ctx context.Context) error
}

// Poller names, as they appear in metric names and profiles.
const (
	pollerNode  = "node"
	pollerBare  = "bare"
	pollerNaive = "naive"
)

func newPoller(name string) poller {
	switch name {
	case pollerBare:
		return &barePoller{}
	case pollerNaive:
		return &naivePoller{}
	}
	return &nodePoller{}
}

// jitterOf returns Interval ± Jitter picked by r in [0,1), as the node's nextPollDelay does.
func jitterOf(o Options, r float64) time.Duration {
	return o.Interval + time.Duration((2*r-1)*float64(o.Jitter))
}

// nodePoller is the real fleet node, in this process, without a cloud link. Its drivers are the cgminer
// driver wrapped to tell the recorder about each poll.
type nodePoller struct {
	n      *node.Node
	reg    *prometheus.Registry
	tmpDir string
}

func (p *nodePoller) name() string { return pollerNode }

func (p *nodePoller) start(o Options, devs []*pb.Device, rec *recorder) error {
	base := node.DefaultDriverFactory(cgminer.Config{})
	factory := func(d *pb.Device) (miners.Driver, error) {
		drv, err := base(d)
		if err != nil {
			return nil, err
		}
		i, ok := rec.index[d.GetMinerId()]
		if !ok {
			return drv, nil
		}
		return &recordingDriver{Driver: drv, rec: rec, i: i}, nil
	}
	dir := o.DataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hashfleet-bench-node-"); err != nil {
			return err
		}
		p.tmpDir = dir
	}
	p.reg = prometheus.NewRegistry()
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Site, cfg.DataDir = "bench", "bench", dir
	cfg.Devices = devs
	cfg.AcceptCloudOwnership = false
	cfg.PollInterval, cfg.PollJitter = o.Interval, o.Jitter
	cfg.MaxInFlight = o.MaxInFlight
	cfg.MaxBacklogSamples = o.BacklogSamples
	cfg.MemoryLimit = int64(o.MemoryLimitMiB) << 20
	cfg.DriverFactory = factory
	cfg.Registerer = p.reg
	cfg.Logger = o.Logger
	n, err := node.New(cfg)
	if err == nil {
		err = n.Start(context.Background())
	}
	if err != nil {
		p.removeDir()
		return fmt.Errorf("start node: %w", err)
	}
	p.n = n
	return nil
}

func (p *nodePoller) stop(ctx context.Context) error {
	var err error
	if p.n != nil {
		err = p.n.Stop(ctx)
		p.n = nil
	}
	p.removeDir()
	return err
}

func (p *nodePoller) removeDir() {
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
		p.tmpDir = ""
	}
}

// polls is the node's own count of polls (hashfleet_node_polls_total, every result), a cross-check of the
// recorder.
func (p *nodePoller) polls() float64 {
	mfs, err := p.reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "hashfleet_node_polls_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// recordingDriver tells the recorder about every poll of one miner.
type recordingDriver struct {
	miners.Driver
	rec *recorder
	i   int
}

func (d *recordingDriver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	start := d.rec.begin()
	s, err := d.Driver.Poll(ctx)
	d.rec.done(d.i, start, err)
	return s, err
}

// barePoller is the least a poller can do with the project's driver: MaxInFlight workers, each owning every
// MaxInFlight-th miner and looping over them in due order, sleeping until the next is due and calling the
// cgminer driver's Poll (connect, send summary+stats+pools, read to the NUL, parse into a pb.Telemetry). No
// actors, no messages, no state machine, no sample hand-off.
type barePoller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (p *barePoller) name() string { return pollerBare }

type bareMiner struct {
	due time.Time
	i   int
	drv *cgminer.Driver
}

type bareQueue []bareMiner

func (q bareQueue) Len() int           { return len(q) }
func (q bareQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q bareQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *bareQueue) Push(x any)        { *q = append(*q, x.(bareMiner)) }
func (q *bareQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func (p *barePoller) start(o Options, devs []*pb.Device, rec *recorder) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	workers := min(o.MaxInFlight, len(devs))
	now := time.Now()
	for w := range workers {
		rnd := rand.New(rand.NewPCG(uint64(o.Seed), uint64(w)))
		q := make(bareQueue, 0, len(devs)/workers+1)
		for i := w; i < len(devs); i += workers {
			q = append(q, bareMiner{due: now.Add(time.Duration(rnd.Float64() * float64(o.Interval))), i: i,
				drv: cgminer.New(devs[i], cgminer.Config{})})
		}
		heap.Init(&q)
		p.wg.Go(func() { bareWorker(ctx, o, q, rnd, rec) })
	}
	return nil
}

func bareWorker(ctx context.Context, o Options, q bareQueue, rnd *rand.Rand, rec *recorder) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m := &q[0]
		if d := time.Until(m.due); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		start := rec.begin()
		_, err := m.drv.Poll(context.Background()) // bounded by the driver's own 3s deadline
		rec.done(m.i, start, err)
		m.due = start.Add(jitterOf(o, rnd.Float64()))
		heap.Fix(&q, 0)
	}
}

func (p *barePoller) stop(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

// naivePoller is how the poll loop is often first written: a goroutine per miner that sleeps, dials a fresh
// TCP connection, sends the request, reads to EOF and decodes the reply with encoding/json into structs and
// maps. The sleep is a select on time.After rather than time.Sleep only so that the run can stop it.
type naivePoller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (p *naivePoller) name() string { return pollerNaive }

func (p *naivePoller) start(o Options, devs []*pb.Device, rec *recorder) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for i, d := range devs {
		addr := d.GetAddress()
		p.wg.Go(func() { naiveLoop(ctx, o, addr, i, rec) })
	}
	return nil
}

func naiveLoop(ctx context.Context, o Options, addr string, i int, rec *recorder) {
	rnd := rand.New(rand.NewPCG(uint64(o.Seed), uint64(i)))
	wait := time.Duration(rnd.Float64() * float64(o.Interval))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		start := rec.begin()
		_, err := naivePoll(addr)
		rec.done(i, start, err)
		wait = max(jitterOf(o, rnd.Float64())-time.Since(start), 0)
	}
}

func (p *naivePoller) stop(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

// naiveReply is the joined summary+stats+pools reply as encoding/json sees it.
type naiveReply struct {
	Summary []struct {
		Status  []naiveStatus    `json:"STATUS"`
		Summary []map[string]any `json:"SUMMARY"`
	} `json:"summary"`
	Stats []struct {
		Status []naiveStatus    `json:"STATUS"`
		Stats  []map[string]any `json:"STATS"`
	} `json:"stats"`
	Pools []struct {
		Status []naiveStatus `json:"STATUS"`
		Pools  []struct {
			URL      string `json:"URL"`
			User     string `json:"User"`
			Status   string `json:"Status"`
			Priority int    `json:"Priority"`
			Accepted int64  `json:"Accepted"`
			Rejected int64  `json:"Rejected"`
		} `json:"POOLS"`
	} `json:"pools"`
}

type naiveStatus struct {
	Status string `json:"STATUS"`
	Msg    string `json:"Msg"`
}

// naiveSample is what the naive poller keeps of a reply.
type naiveSample struct {
	hashrateGHs float64
	uptimeS     float64
	pools       int
}

var naiveRequest = []byte(`{"command":"summary+stats+pools"}`)

func naivePoll(addr string) (naiveSample, error) {
	var s naiveSample
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return s, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return s, err
	}
	if _, err := conn.Write(naiveRequest); err != nil {
		return s, err
	}
	body, err := io.ReadAll(conn)
	if err != nil {
		return s, err
	}
	var r naiveReply
	if err := json.Unmarshal(bytes.TrimRight(body, "\x00"), &r); err != nil {
		return s, err
	}
	if len(r.Summary) == 0 || len(r.Summary[0].Summary) == 0 {
		return s, errors.New("no SUMMARY in the reply")
	}
	sum := r.Summary[0].Summary[0]
	switch v := sum["GHS 5s"].(type) {
	case string:
		s.hashrateGHs, _ = strconv.ParseFloat(v, 64)
	case float64:
		s.hashrateGHs = v
	}
	s.uptimeS, _ = sum["Elapsed"].(float64)
	if len(r.Pools) > 0 {
		s.pools = len(r.Pools[0].Pools)
	}
	return s, nil
}
