package antweb

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// Work modes as bitmain-work-mode spells them.
const (
	modeNormal   = "0"
	modeSleep    = "1"
	modeLowPower = "3"
)

// apiTimeout bounds one write-through call to the miner's own API (wall clock, loopback).
const apiTimeout = 5 * time.Second

// Miner is one simulated Antminer: its web side here, its API side a *sim.Miner.
type Miner struct {
	fleet *Fleet
	id    string
	api   *sim.Miner

	// writeMu serializes write-through calls: drv is used from one goroutine at a time.
	writeMu sync.Mutex
	drv     *cgminer.Driver

	mu        sync.Mutex
	addr      string
	srv       *http.Server
	ln        net.Listener
	fault     Fault
	user      string
	pass      string
	opaque    string
	hostname  string
	workMode  string            // what the web side was last told (the API holds sleep/normal itself)
	passwords map[string]string // url\x00user → pool password as configured through the web
	blink     bool
	rebooting bool
	reboots   int
	bootTimer clock.Timer
	nonces    map[string]*nonceState
	auth      AuthStats
	log       []WriteRecord
}

// State is a miner's state as both sides report it.
type State struct {
	// API is what the CGMiner API reports (miners/sim's view).
	API sim.State
	// WorkMode is bitmain-work-mode as get_miner_conf.cgi reports it: "0", "1" or "3".
	WorkMode string
	// Pools are the configured pools as get_miner_conf.cgi reports them, in priority order, with passwords.
	Pools     []Pool
	Blinking  bool
	Rebooting bool // the web side is down for a reboot
	Reboots   int
	Hostname  string
}

// Pool is one pool as the web CGI shows it.
type Pool struct {
	URL, User, Pass string
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// Addr returns the web side's host:port.
func (m *Miner) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// API returns the miner's CGMiner side.
func (m *Miner) API() *sim.Miner { return m.api }

// Reachable reports whether the web side accepts connections.
func (m *Miner) Reachable() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv != nil
}

// Snapshot returns both sides' state now.
func (m *Miner) Snapshot() State {
	api := m.api.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	return State{
		API: api, WorkMode: m.workModeLocked(api), Pools: m.poolsLocked(api), Blinking: m.blink,
		Rebooting: m.rebooting, Reboots: m.reboots, Hostname: m.hostname,
	}
}

// workModeLocked: sleep is whatever the API says (someone may have used the API directly); low power is
// the web side's own.
func (m *Miner) workModeLocked(api sim.State) string {
	switch {
	case api.Sleeping:
		return modeSleep
	case m.workMode == modeLowPower:
		return modeLowPower
	}
	return modeNormal
}

func (m *Miner) poolsLocked(api sim.State) []Pool {
	ps := slices.Clone(api.Pools)
	slices.SortStableFunc(ps, func(a, b sim.Pool) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]Pool, 0, len(ps))
	for _, p := range ps {
		pass, ok := m.passwords[p.URL+"\x00"+p.User]
		if !ok {
			pass = "x"
		}
		out = append(out, Pool{URL: p.URL, User: p.User, Pass: pass})
	}
	return out
}

// WriteLog returns a copy of the miner's web write log.
func (m *Miner) WriteLog() []WriteRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

// AuthStats returns what the digest layer has done so far.
func (m *Miner) AuthStats() AuthStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.auth
}

// SetCredentials changes the miner's web username and password.
func (m *Miner) SetCredentials(user, pass string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.user, m.pass = user, pass
}

func (m *Miner) username() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.user
}

// Fault returns the web side's fault.
func (m *Miner) Fault() Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fault
}

// SetFault sets the web side's fault; FaultNone clears it. FaultDown closes the web listener and its
// connections (the API side is unaffected: use API().SetFault).
func (m *Miner) SetFault(fault Fault) error {
	if fault < FaultNone || fault >= faultEnd {
		return fmt.Errorf("antweb: unknown fault %d", int(fault))
	}
	m.mu.Lock()
	m.fault = fault
	var err error
	if fault != FaultDown && m.srv == nil && !m.rebooting {
		err = m.listenLocked()
	}
	m.mu.Unlock()
	if fault == FaultDown {
		return m.stop()
	}
	return err
}

// execute runs one command on the miner's own API, as the CGI scripts drive bmminer.
func (m *Miner) execute(ctx context.Context, spec *pb.CommandSpec) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err := m.drv.Execute(ctx, spec)
	return err
}

// bootDone brings the web side back after a reboot and re-applies sleep mode, which the miner's
// configuration keeps across reboots while bmminer starts awake.
func (m *Miner) bootDone() {
	m.mu.Lock()
	if !m.rebooting {
		m.mu.Unlock()
		return
	}
	m.rebooting, m.blink = false, false
	clear(m.nonces)
	sleep := m.workMode == modeSleep
	if m.srv == nil && m.fault != FaultDown {
		_ = m.listenLocked()
	}
	m.mu.Unlock()
	if !sleep || !m.fleet.track() {
		return
	}
	defer m.fleet.wg.Done()
	for try := 0; try < 5; try++ { // on the wall clock the API may come back a moment later
		if m.execute(m.fleet.ctx, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}) == nil {
			return
		}
		select {
		case <-m.fleet.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
