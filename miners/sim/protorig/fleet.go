package protorig

import (
	"crypto/tls"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// Fleet is a running set of simulated rigs. Its methods are safe for concurrent use.
type Fleet struct {
	cfg    Config
	web    *httpsim.Fleet
	miners []*Miner
	byID   map[string]*Miner
}

// Start validates cfg, opens one listener per rig and serves them until Close.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	wc := cfg.web()
	web, err := httpsim.NewFleet(wc, httpsim.Options{
		Handler: routes(), IsWrite: isWrite, BadBody: badBody,
		Malformed: `{"mining-status": {"status": "Mining", "power_usage_watts": 31`, ErrClosed: ErrClosed, ErrUnknownMiner: ErrUnknownMiner,
	})
	if err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, web: web, byID: make(map[string]*Miner, cfg.Count)}
	ips, _ := wc.IPs()
	now := cfg.Clock.Now()
	for i := range cfg.Count {
		host := cfg.Host
		if cfg.PerMinerIP {
			host = ips[i].String()
		}
		m := &Miner{
			fleet: f,
			id:    fmt.Sprintf("%s%04d", cfg.IDPrefix, i),
			rig:   newRig(mrand.New(mrand.NewPCG(uint64(cfg.Seed), uint64(i))), i, cfg.Password, now),
		}
		m.web = web.Add(m.id, wc.ListenAddr(i, host), m)
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
	}
	if err := web.Listen(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// Devices returns one Device per rig: Protocol PROTO, Address and WebAddress both the REST endpoint.
func (f *Fleet) Devices() []*pb.Device {
	out := make([]*pb.Device, 0, len(f.miners))
	for _, m := range f.miners {
		addr := m.Addr()
		m.mu.Lock()
		out = append(out, &pb.Device{
			MinerId: m.id, Address: addr, WebAddress: addr, Protocol: pb.Protocol_PROTOCOL_PROTO,
			Model: m.rig.model, Serial: m.rig.serial, Mac: m.rig.mac,
		})
		m.mu.Unlock()
	}
	return out
}

// Miners returns every rig, in id order.
func (f *Fleet) Miners() []*Miner { return slices.Clone(f.miners) }

// Miner returns the rig with id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// WriteLog returns every rig's write log merged in time order (ties in miner order).
func (f *Fleet) WriteLog() []WriteRecord { return records(f.web.Writes()) }

// SetFault sets the fault of rig id; FaultNone clears it.
func (f *Fleet) SetFault(id string, fault Fault) error { return f.web.SetFault(id, fault) }

// ClientTLS returns a client configuration that trusts the fleet's certificate, or nil without Config.TLS.
func (f *Fleet) ClientTLS() *tls.Config { return f.web.ClientTLS() }

// Close stops every rig and waits for every goroutine the fleet started. It is safe to call more than once.
func (f *Fleet) Close() error { return f.web.Close(nil) }

// Miner is one simulated rig.
type Miner struct {
	fleet *Fleet
	id    string
	web   *httpsim.Endpoint // the rig's listener, its fault, reboots and write log

	mu           sync.Mutex
	rig          *rig
	refuseUpdate string // non-empty: PUT /api/v1/system/update fails with this reason
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// Addr returns the rig's host:port.
func (m *Miner) Addr() string { return m.web.Addr() }

// Reachable reports whether the rig accepts connections now (not rebooting, not FaultDown).
func (m *Miner) Reachable() bool { return m.web.Reachable() }

// Snapshot returns the rig's state as its API reports it now.
func (m *Miner) Snapshot() State {
	rebooting, reboots := m.web.Rebooting()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.rig.snapshot(m.id, m.fleet.cfg.Clock.Now())
	s.Rebooting, s.Reboots = rebooting, reboots
	return s
}

// WriteLog returns a copy of the rig's write log.
func (m *Miner) WriteLog() []WriteRecord { return records(m.web.Writes()) }

// SetCurtailment sets or lifts curtailment as the rig's own curtailment service would.
func (m *Miner) SetCurtailment(active bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.curtailed = active
	if !active && m.rig.hashing() {
		m.rig.miningSince = m.fleet.cfg.Clock.Now()
	}
}

// SetErrors replaces the rig's active errors.
func (m *Miner) SetErrors(errs []RigError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.errors = slices.Clone(errs)
}

// SetPassword changes the rig's login password.
func (m *Miner) SetPassword(pw string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.password = pw
}

// Fault returns the rig's current fault.
func (m *Miner) Fault() Fault { return m.web.Fault() }

// SetFault sets the rig's fault; FaultNone clears it. FaultDown closes the listener and every connection;
// clearing it listens again (unless the rig is rebooting).
func (m *Miner) SetFault(fault Fault) error { return m.web.SetFault(fault) }

// ServeHTTP serves one request as the rig's own listener does, faults included.
func (m *Miner) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.web.ServeHTTP(w, r) }

// badBody answers a request body that could not be read or is too large.
func badBody(w http.ResponseWriter, err error) {
	if errors.Is(err, httpsim.ErrBodyTooLarge) {
		message(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	message(w, http.StatusBadRequest, "read request body: "+err.Error())
}
