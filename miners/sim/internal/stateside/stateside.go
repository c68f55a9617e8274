// Package stateside is the plumbing the simulators share whose own API fronts a miners/sim CGMiner miner
// (miners/sim/braiins, miners/sim/whatsminer): the CGMiner fleet that holds the miners' state, a
// write-through driver per miner through which the front end changes that state as the real firmware
// drives its own miner, the goroutines of the front end's listeners, and closing all of it in order.
package stateside

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// writeTimeout bounds one write-through call to the state side (wall clock, loopback).
const writeTimeout = 5 * time.Second

// Fleet is a started state side and the goroutines of the front end over it.
type Fleet struct {
	api     *sim.Fleet
	members []Member

	wg        sync.WaitGroup // the front end's goroutines, started with Go
	closeOnce sync.Once
}

// Member is one miner of the state side, in index order.
type Member struct {
	API    *sim.Miner
	Writer *Writer
	// Host is the miner's address without port: the front end's listeners of the miner bind there too.
	Host string
}

// Start starts the CGMiner fleet of cfg and a Writer per miner; name ("braiins sim") prefixes the writers'
// logs. The caller wraps the error with its own context.
func Start(name string, cfg sim.Config) (*Fleet, error) {
	api, err := sim.Start(cfg)
	if err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real()
	}
	f := &Fleet{api: api}
	for _, sm := range api.Miners() {
		host, _, _ := net.SplitHostPort(sm.Addr())
		f.members = append(f.members, Member{API: sm, Host: host, Writer: &Writer{name: name, id: sm.ID(),
			drv: cgminer.New(&pb.Device{MinerId: sm.ID(), Address: sm.Addr()}, cgminer.Config{Clock: clk})}})
	}
	return f, nil
}

// API returns the CGMiner fleet.
func (f *Fleet) API() *sim.Fleet { return f.api }

// Members returns the miners in index order.
func (f *Fleet) Members() []Member { return slices.Clone(f.members) }

// Go runs fn on a goroutine that Close waits for.
func (f *Fleet) Go(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}

// Close runs stop (which must make every goroutine started with Go return), waits for those goroutines,
// then stops the CGMiner fleet and every Writer. Only the first call does so and returns their error; later
// calls return nil.
func (f *Fleet) Close(stop func()) error {
	var err error
	f.closeOnce.Do(func() {
		stop()
		f.wg.Wait()
		errs := []error{f.api.Close()}
		for _, m := range f.members {
			errs = append(errs, m.Writer.drv.Close())
		}
		err = errors.Join(errs...)
	})
	return err
}

// Writer runs commands on one miner's CGMiner API, one at a time.
type Writer struct {
	name, id string

	mu  sync.Mutex // drv is used from one goroutine at a time
	drv *cgminer.Driver
}

// Execute runs spec on the miner's CGMiner API within a few seconds; a failure is logged at debug level and
// returned.
func (w *Writer) Execute(spec *pb.CommandSpec) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	_, err := w.drv.Execute(ctx, spec)
	if err != nil {
		slog.Debug(w.name+": write-through failed", "miner", w.id, "err", err)
	}
	return err
}
