package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"google.golang.org/protobuf/encoding/protojson"
)

// site is a simulated site: the miners' devices and whatever serves them.
type site struct {
	devices []*pb.Device
	fleet   *sim.Fleet // in process
	procs   []*simProc // out of process
	dir     string     // the device lists
}

// How long a simulator process may take to bind its listeners, and to stop once asked.
const (
	simStartTimeout = 2 * time.Minute
	simStopTimeout  = 10 * time.Second
)

// startSite starts o.Miners simulated miners, each on its own loopback address and port o.Port.
func startSite(ctx context.Context, o Options, suite string, prog Progress) (*site, error) {
	if o.InProcessSim {
		prog.Stage(suite, "start simulated miners in process", "miners", int64(o.Miners))
		f, err := sim.Start(sim.Config{Count: o.Miners, PerMinerIP: true, BaseIP: netBase(o.FirstNet), Port: o.Port, Seed: o.Seed})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSimulator, err)
		}
		prog.Update(int64(o.Miners), "")
		return &site{devices: f.Devices(), fleet: f}, nil
	}
	dir, err := os.MkdirTemp("", "hashfleet-bench-sim-")
	if err != nil {
		return nil, err
	}
	s := &site{dir: dir}
	n := o.simProcesses()
	prog.Stage(suite, fmt.Sprintf("start %d simulated miners", o.Miners), "simulator processes", int64(n))
	per := (o.Miners + n - 1) / n
	for k := range n {
		count := min(per, o.Miners-k*per)
		p, err := startSimProc(o, k, count, dir)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	wctx, cancel := context.WithTimeout(ctx, simStartTimeout)
	defer cancel()
	for k, p := range s.procs {
		devs, err := p.waitReady(wctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.devices = append(s.devices, devs...)
		prog.Update(int64(k+1), fmt.Sprintf("simulator %d ready: %d miners from %s", k+1, len(devs), devs[0].GetAddress()))
	}
	return s, nil
}

// netBase is the first address of simulator range k: 127.k.0.1.
func netBase(net int) string { return "127." + strconv.Itoa(net) + ".0.1" }

// simCPU is the CPU time the simulator processes used so far (0 in process).
func (s *site) simCPU() time.Duration {
	var t time.Duration
	for _, p := range s.procs {
		if c, ok := pidCPU(p.cmd.Process.Pid); ok {
			t += c
		}
	}
	return t
}

// alive reports a simulator process that has exited.
func (s *site) alive() error {
	for _, p := range s.procs {
		select {
		case <-p.exited:
			return p.exitErr()
		default:
		}
	}
	return nil
}

// scope says whose CPU and memory a process-wide figure includes.
func (s *site) scope() string {
	if s.fleet != nil {
		return "this process, including the in-process simulator"
	}
	return fmt.Sprintf("this process only (the simulator runs in %d other process(es))", len(s.procs))
}

// Close stops the simulators: SIGTERM, then SIGKILL after simStopTimeout.
func (s *site) Close() error {
	var errs []error
	if s.fleet != nil {
		errs = append(errs, s.fleet.Close())
	}
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(p.stop)
	}
	wg.Wait()
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// simProc is one simulator process.
type simProc struct {
	k       int
	cmd     *exec.Cmd
	devices string
	out     *tailBuffer
	exited  chan struct{} // closed when the process has exited; err is set before
	err     error
}

func startSimProc(o Options, k, count int, dir string) (*simProc, error) {
	p := &simProc{k: k, devices: filepath.Join(dir, "devices-"+strconv.Itoa(k)+".json"), out: &tailBuffer{max: 4 << 10},
		exited: make(chan struct{})}
	args := append([]string{}, o.SimCommand[1:]...)
	args = append(args,
		"--miners", strconv.Itoa(count),
		"--per-miner-ip",
		"--base-ip", netBase(o.FirstNet+k),
		"--port", strconv.Itoa(o.Port),
		"--seed", strconv.FormatInt(o.Seed+int64(k), 10),
		"--id-prefix", "sim"+strconv.Itoa(k)+"-",
		"--devices-out", p.devices,
	)
	p.cmd = exec.Command(o.SimCommand[0], args...)
	p.cmd.Env = append(os.Environ(), o.SimEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start simulator %d (%s): %w", ErrSimulator, k, o.SimCommand[0], err)
	}
	go func() { // ends when the process exits; stop makes sure it does
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady waits for the device list the simulator writes once every listener is bound.
func (p *simProc) waitReady(ctx context.Context) ([]*pb.Device, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(p.devices); err == nil {
			devs, err := readDevices(p.devices)
			if err != nil {
				return nil, fmt.Errorf("%w: simulator %d: %w", ErrSimulator, p.k, err)
			}
			return devs, nil
		}
		select {
		case <-p.exited:
			return nil, p.exitErr()
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: simulator %d not ready: %w; its output: %s", ErrSimulator, p.k, ctx.Err(), p.out)
		case <-tick.C:
		}
	}
}

func (p *simProc) exitErr() error {
	return fmt.Errorf("%w: simulator %d exited (%v); its output: %s", ErrSimulator, p.k, p.err, p.out)
}

func (p *simProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(simStopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// devicesFile is the device list `hashfleet minersim --devices-out` writes (bootstrap.WriteDevices), read
// here without importing bootstrap.
type devicesFile struct {
	Devices []json.RawMessage `json:"devices"`
}

func readDevices(path string) ([]*pb.Device, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read device list: %w", err)
	}
	var f devicesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("device list %s: %w", path, err)
	}
	if len(f.Devices) == 0 {
		return nil, fmt.Errorf("device list %s is empty", path)
	}
	devs := make([]*pb.Device, 0, len(f.Devices))
	for i, raw := range f.Devices {
		d := &pb.Device{}
		if err := protojson.Unmarshal(raw, d); err != nil {
			return nil, fmt.Errorf("device list %s: entry %d: %w", path, i, err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func writeDevices(path string, devs []*pb.Device) error {
	f := devicesFile{Devices: make([]json.RawMessage, 0, len(devs))}
	for _, d := range devs {
		b, err := protojson.Marshal(d)
		if err != nil {
			return err
		}
		f.Devices = append(f.Devices, b)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tailBuffer keeps the last max bytes written to it: a child's output, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) == 0 {
		return "(none)"
	}
	return string(t.b)
}
