// Package drivertest is the in-memory twin of a miner: a miners.Driver whose replies, faults, latency and
// panics a test sets directly, and which records every call so tests can assert ordering and exclusivity.
package drivertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// Fault is what the next polls do instead of answering.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultDown refuses every call with miners.ErrUnreachable.
	FaultDown
	// FaultMalformed answers polls with an unreadable reply (miners.ErrMalformed).
	FaultMalformed
	// FaultPanic panics inside Poll (a driver bug).
	FaultPanic
)

// Call is one recorded Execute.
type Call struct {
	Action pb.Action
	Key    string // Params["key"] when the test set one, to follow a command through
}

// Driver is a fake miner. All methods are safe for concurrent use; it also records when the Driver contract
// (one call at a time) was broken.
type Driver struct {
	ID string

	mu         sync.Mutex
	fault      Fault
	panics     int // FaultPanic: how many polls still panic; <0 forever
	state      pb.MinerState
	uptime     int64
	hashrate   float64
	block      chan struct{} // non-nil: calls wait until it is closed (or ctx ends)
	execHook   func(*pb.CommandSpec) (string, error)
	calls      []Call
	ops        []string
	downPolls  int // polls that still fail after a reboot
	rebootDown int // how many polls a reboot makes the miner miss

	polls      atomic.Int64
	inCall     atomic.Int32
	violations atomic.Int32
	closed     atomic.Int32
}

// New returns a mining, healthy fake with the given id.
func New(id string) *Driver {
	return &Driver{ID: id, state: pb.MinerState_MINER_STATE_MINING, uptime: 1000, hashrate: 100, rebootDown: 1}
}

// SetFault changes what the next polls do.
func (d *Driver) SetFault(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
	if f == FaultPanic && d.panics == 0 {
		d.panics = -1
	}
}

// PanicTimes makes the next n polls panic, then answer normally again.
func (d *Driver) PanicTimes(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = FaultPanic
	d.panics = n
}

// SetState sets the state the miner reports.
func (d *Driver) SetState(s pb.MinerState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state = s
}

// SetUptime sets the uptime the miner reports, in seconds.
func (d *Driver) SetUptime(s int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uptime = s
}

// SetRebootDownPolls sets how many polls fail (unreachable) after a reboot before the miner answers again
// with its uptime reset. Default 1.
func (d *Driver) SetRebootDownPolls(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rebootDown = n
}

// Block makes every call wait until the returned release func is called (or the call's ctx ends).
func (d *Driver) Block() (release func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.block = ch
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			if d.block == ch {
				d.block = nil
			}
			d.mu.Unlock()
			close(ch)
		})
	}
}

// OnExecute replaces the default Execute behaviour.
func (d *Driver) OnExecute(f func(*pb.CommandSpec) (string, error)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.execHook = f
}

// Polls counts polls that reached the driver (answered or not).
func (d *Driver) Polls() int64 { return d.polls.Load() }

// Calls returns the recorded Execute calls in order.
func (d *Driver) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Call(nil), d.calls...)
}

// Ops returns every call in order: "poll" or "exec:<action>:<key>".
func (d *Driver) Ops() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ops...)
}

// Violations counts calls that overlapped another call (the Driver contract says one at a time).
func (d *Driver) Violations() int { return int(d.violations.Load()) }

// Closed reports how often Close was called.
func (d *Driver) Closed() int { return int(d.closed.Load()) }

func (d *Driver) enter(ctx context.Context) error {
	if d.inCall.Add(1) > 1 {
		d.violations.Add(1)
	}
	d.mu.Lock()
	ch := d.block
	d.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fake %s: %w: %w", d.ID, miners.ErrUnreachable, ctx.Err())
		}
	}
	return nil
}

func (d *Driver) leave() { d.inCall.Add(-1) }

// Poll implements miners.Driver.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	d.polls.Add(1)
	if err := d.enter(ctx); err != nil {
		d.leave()
		return nil, err
	}
	defer d.leave()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ops = append(d.ops, "poll")
	if d.downPolls > 0 {
		d.downPolls--
		return nil, fmt.Errorf("fake %s: rebooting: %w", d.ID, miners.ErrUnreachable)
	}
	switch d.fault {
	case FaultDown:
		return nil, fmt.Errorf("fake %s: connection refused: %w", d.ID, miners.ErrUnreachable)
	case FaultMalformed:
		return nil, fmt.Errorf("fake %s: summary: invalid character '}' at offset 17: %w", d.ID, miners.ErrMalformed)
	case FaultPanic:
		if d.panics != 0 {
			if d.panics > 0 {
				d.panics--
				if d.panics == 0 {
					d.fault = FaultNone
				}
			}
			panic(fmt.Sprintf("fake %s: driver bug", d.ID))
		}
	}
	d.uptime += 5
	return &pb.Telemetry{
		MinerId:        d.ID,
		State:          d.state,
		Hashrate_5SThs: d.hashrate,
		UptimeS:        d.uptime,
		Model:          "FakeMiner S1",
	}, nil
}

// Execute implements miners.Driver: it records the call and applies the action's effect on the fake.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	if err := d.enter(ctx); err != nil {
		d.leave()
		return "", err
	}
	defer d.leave()
	d.mu.Lock()
	d.calls = append(d.calls, Call{Action: spec.GetAction(), Key: spec.GetParams()["key"]})
	d.ops = append(d.ops, "exec:"+spec.GetAction().String()+":"+spec.GetParams()["key"])
	hook := d.execHook
	if d.fault == FaultDown {
		d.mu.Unlock()
		return "", fmt.Errorf("fake %s: connection refused: %w", d.ID, miners.ErrUnreachable)
	}
	d.mu.Unlock()
	if hook != nil {
		return hook(spec)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch spec.GetAction() {
	case pb.Action_ACTION_REBOOT:
		d.uptime = 0
		d.downPolls = d.rebootDown
		return "restart accepted", nil
	case pb.Action_ACTION_STOP_MINING:
		d.state = pb.MinerState_MINER_STATE_STOPPED
		return "stopped", nil
	case pb.Action_ACTION_START_MINING, pb.Action_ACTION_UNCURTAIL:
		d.state = pb.MinerState_MINER_STATE_MINING
		return "started", nil
	case pb.Action_ACTION_CURTAIL:
		d.state = pb.MinerState_MINER_STATE_CURTAILED
		return "curtailed", nil
	case pb.Action_ACTION_BLINK:
		return "blinking", nil
	}
	return "", fmt.Errorf("fake %s: %s: %w", d.ID, spec.GetAction(), miners.ErrUnsupported)
}

// Close implements miners.Driver.
func (d *Driver) Close() error {
	d.closed.Add(1)
	return nil
}

// Fleet is a set of fakes addressed by miner id, with a factory for the node.
type Fleet struct {
	mu      sync.Mutex
	drivers map[string]*Driver
}

// NewFleet returns fakes for miners m-0 .. m-(n-1) and their devices.
func NewFleet(n int) (*Fleet, []*pb.Device) {
	f := &Fleet{drivers: map[string]*Driver{}}
	devs := make([]*pb.Device, 0, n)
	for i := range n {
		id := fmt.Sprintf("m-%d", i)
		f.drivers[id] = New(id)
		devs = append(devs, &pb.Device{MinerId: id, Address: fmt.Sprintf("10.0.%d.%d:4028", i/250, i%250+1), Protocol: pb.Protocol_PROTOCOL_CGMINER})
	}
	return f, devs
}

// Get returns the fake of id, creating it on first use.
func (f *Fleet) Get(id string) *Driver {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.drivers[id]
	if !ok {
		d = New(id)
		f.drivers[id] = d
	}
	return d
}

// Factory is a node DriverFactory returning the fake of the device's miner id (the same fake on every call,
// so a test keeps control of it across actor restarts).
func (f *Fleet) Factory(dev *pb.Device) (miners.Driver, error) {
	return f.Get(dev.GetMinerId()), nil
}

// Violations sums contract violations over the fleet.
func (f *Fleet) Violations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.drivers {
		n += d.Violations()
	}
	return n
}
