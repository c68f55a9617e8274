package antweb

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
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

	web *httpsim.Endpoint // the web listener, its fault, reboots and write log

	mu           sync.Mutex
	user         string
	pass         string
	opaque       string
	hostname     string
	workMode     string            // what the web side was last told (the API holds sleep/normal itself)
	passwords    map[string]string // url\x00user → pool password as configured through the web
	blink        bool
	nonces       map[string]*nonceState
	auth         AuthStats
	upgradeFault UpgradeFault
	refusePasswd string // non-empty: passwd.cgi refuses with this reason
	fanCtrl      bool
	fanPWM       int // -1 until set: 100
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
	// FanCtrl and FanPWM are bitmain-fan-ctrl and bitmain-fan-pwm: manual fan control at FanPWM percent
	// (0 with FanCtrl: fans off, immersion cooling), or the firmware's automatic control.
	FanCtrl bool
	FanPWM  int
}

// Pool is one pool as the web CGI shows it.
type Pool struct {
	URL, User, Pass string
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// Addr returns the web side's host:port.
func (m *Miner) Addr() string { return m.web.Addr() }

// API returns the miner's CGMiner side.
func (m *Miner) API() *sim.Miner { return m.api }

// Reachable reports whether the web side accepts connections.
func (m *Miner) Reachable() bool { return m.web.Reachable() }

// Snapshot returns both sides' state now.
func (m *Miner) Snapshot() State {
	api := m.api.Snapshot()
	rebooting, reboots := m.web.Rebooting()
	m.mu.Lock()
	defer m.mu.Unlock()
	return State{
		API: api, WorkMode: m.workModeLocked(api), Pools: m.poolsLocked(api), Blinking: m.blink,
		Rebooting: rebooting, Reboots: reboots, Hostname: m.hostname, FanCtrl: m.fanCtrl, FanPWM: m.fanPWMLocked(),
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
func (m *Miner) WriteLog() []WriteRecord { return records(m.web.Writes()) }

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
func (m *Miner) Fault() Fault { return m.web.Fault() }

// SetFault sets the web side's fault; FaultNone clears it. FaultDown closes the web listener and its
// connections (the API side is unaffected: use API().SetFault).
func (m *Miner) SetFault(fault Fault) error { return m.web.SetFault(fault) }

// ServeHTTP serves one request to the web side as the miner's own listener does, faults included.
func (m *Miner) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.web.ServeHTTP(w, r) }

// execute runs one command on the miner's own API, as the CGI scripts drive bmminer.
func (m *Miner) execute(ctx context.Context, spec *pb.CommandSpec) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err := m.drv.Execute(ctx, spec)
	return err
}

// bootDone is the end of a reboot, before the web side listens again: blink is off, nonces are forgotten,
// and sleep mode is re-applied, which the miner's configuration keeps across reboots while bmminer starts
// awake.
func (m *Miner) bootDone() {
	m.mu.Lock()
	m.blink = false
	clear(m.nonces)
	sleep := m.workMode == modeSleep
	m.mu.Unlock()
	if !sleep {
		return
	}
	m.fleet.web.Tracked(func(ctx context.Context) {
		for try := 0; try < 5; try++ { // on the wall clock the API may come back a moment later
			if m.execute(ctx, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}) == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
