package sim

import (
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// Fleet is a running set of simulated miners.
type Fleet struct {
	cfg       Config
	miners    []*Miner
	byID      map[string]*Miner
	wg        sync.WaitGroup // accept loops and request goroutines
	done      chan struct{}  // closed by Close, ends waits in FaultSlow
	closeOnce sync.Once
}

// Start binds every miner's listener before returning. Zero Config fields take their defaults.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Fleet{cfg: cfg, byID: make(map[string]*Miner, cfg.Count), done: make(chan struct{})}
	base, _ := minerIPs(cfg)
	now := cfg.Clock.Now()
	for i := range cfg.Count {
		m := &Miner{
			fleet:       f,
			id:          cfg.IDPrefix + strconv.Itoa(i),
			identity:    newIdentity(cfg.Seed, i),
			conns:       make(map[net.Conn]struct{}),
			bootAt:      now,
			lastAdvance: now,
		}
		m.pools = []pool{
			{url: "stratum+tcp://pool-a.sim.invalid:3333", user: "hashfleet." + m.id, pass: "x", prio: 0},
			{url: "stratum+tcp://pool-b.sim.invalid:3333", user: "hashfleet." + m.id, pass: "x", prio: 1},
			{url: "stratum+tcp://pool-c.sim.invalid:443", user: "hashfleet." + m.id, pass: "x", prio: 2},
		}
		host := cfg.Host
		if cfg.PerMinerIP {
			host = httpsim.NthIP(base, i).String()
		}
		m.addr = net.JoinHostPort(host, strconv.Itoa(cfg.Port))
		m.mu.Lock()
		err := m.bindLocked()
		m.mu.Unlock()
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sim: start miner %s: %w", m.id, err)
		}
	}
	return f, nil
}

// Miners returns the miners in index order.
func (f *Fleet) Miners() []*Miner { return f.miners }

// Miner returns the miner with this id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// Devices describes every miner as a node would know it.
func (f *Fleet) Devices() []*pb.Device {
	out := make([]*pb.Device, len(f.miners))
	for i, m := range f.miners {
		out[i] = &pb.Device{
			MinerId:  m.id,
			Address:  m.Addr(),
			Protocol: pb.Protocol_PROTOCOL_CGMINER,
			Model:    m.model.name,
			Serial:   m.serial,
			Mac:      m.mac,
		}
	}
	return out
}

// Close closes every listener and connection and waits for every goroutine. It is safe to call twice.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		close(f.done)
		for _, m := range f.miners {
			m.close()
		}
		f.wg.Wait()
	})
	return nil
}
