package sim

import (
	"errors"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Fault is a failure a miner can be told to show.
type Fault int

const (
	// FaultNone: the miner behaves.
	FaultNone Fault = iota
	// FaultDown: connections are refused (the listener is closed).
	FaultDown
	// FaultSlow: replies come after Config.SlowDelay.
	FaultSlow
	// FaultMalformed: replies are invalid JSON (cut off mid-object).
	FaultMalformed
	// FaultFlapping: every other connection is closed without a reply.
	FaultFlapping
	// FaultHang: connections are accepted and the request read, but no reply ever comes.
	FaultHang
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDown:
		return "down"
	case FaultSlow:
		return "slow"
	case FaultMalformed:
		return "malformed"
	case FaultFlapping:
		return "flapping"
	case FaultHang:
		return "hang"
	}
	return "unknown"
}

// State is a copy of a miner's state at one instant of the sim clock, exactly as a poll at that instant
// reads it.
type State struct {
	Mining    bool // hashing: not paused, sleeping or rebooting
	Paused    bool
	Sleeping  bool
	Rebooting bool
	// HashrateTHs is the 5 s hashrate; HashrateAvgTHs the average since boot.
	HashrateTHs    float64
	HashrateAvgTHs float64
	// Per board, in chain order.
	BoardHashrateTHs []float64
	BoardTemps       []float64 // PCB, °C
	ChipTemps        []float64 // °C
	Fans             []int     // RPM
	PowerW           float64
	Pools            []Pool // in POOL number order
	Uptime           time.Duration
	WorkMode         string // "normal" or "sleep"
	Model            string
	Serial           string
	MAC              string
	Firmware         string // CompileTime
}

// Pool is one configured pool as the miner reports it, plus the password it was given (which the CGMiner
// API never reports), so tests can check credentials arrive intact.
type Pool struct {
	URL      string
	User     string
	Password string
	Priority int // 0 is tried first
	Status   string
	Accepted int64
	Rejected int64
	Active   bool
}

// Write is one write command the miner received, honoured or refused.
type Write struct {
	At        time.Time // sim clock
	Command   string
	Parameter string
	Remote    string // peer address
	Accepted  bool
}

// Miner is one simulated miner.
type Miner struct {
	fleet *Fleet
	id    string
	identity

	mu          sync.Mutex
	addr        string // fixed once the first listener is bound
	ln          net.Listener
	conns       map[net.Conn]struct{}
	closed      bool
	fault       Fault
	flap        uint64
	paused      bool
	sleeping    bool
	rebooting   bool
	rebootTimer clock.Timer
	bootAt      time.Time
	lastAdvance time.Time
	pools       []pool
	writes      []Write
	cond        conditions // SetHeat, SetHashrateFactor
}

// pool is a configured pool; counters are fractional so slow accrual is exact.
type pool struct {
	url, user, pass    string
	prio               int
	disabled           bool
	accepted, rejected float64
}

// ID returns the miner id (IDPrefix + index).
func (m *Miner) ID() string { return m.id }

// Addr returns host:port of the miner's CGMiner API.
func (m *Miner) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Snapshot returns the state at the sim clock's now.
func (m *Miner) Snapshot() State {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(now)
	r := m.readLocked(now)
	s := State{
		Mining:           m.hashingLocked(),
		Paused:           m.paused,
		Sleeping:         m.sleeping,
		Rebooting:        m.rebooting,
		HashrateTHs:      r.h5GH / 1e3,
		HashrateAvgTHs:   r.havGH / 1e3,
		BoardHashrateTHs: make([]float64, r.boards),
		BoardTemps:       slices.Clone(r.pcb[:r.boards]),
		ChipTemps:        slices.Clone(r.chip[:r.boards]),
		PowerW:           r.powerW,
		Uptime:           r.uptime,
		WorkMode:         r.workMode(),
		Model:            m.model.name,
		Serial:           m.serial,
		MAC:              m.mac,
		Firmware:         m.firmwareLocked(),
	}
	for i := range s.BoardHashrateTHs {
		s.BoardHashrateTHs[i] = r.rateGH[i] / 1e3
	}
	for _, f := range r.fanRPM[:r.fans] {
		if f > 0 {
			s.Fans = append(s.Fans, f)
		}
	}
	active := m.activeLocked()
	for i, p := range m.pools {
		s.Pools = append(s.Pools, Pool{
			URL: p.url, User: p.user, Password: p.pass, Priority: p.prio, Status: p.status(),
			Accepted: int64(p.accepted), Rejected: int64(p.rejected), Active: i == active,
		})
	}
	return s
}

// WriteLog returns every write command received so far, in order.
func (m *Miner) WriteLog() []Write {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.writes)
}

// SetFault switches the miner's fault mode; it applies to connections accepted from now on.
func (m *Miner) SetFault(f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault, m.flap = f, 0
	m.listenLocked()
}

// Down refuses connections until Up.
func (m *Miner) Down() { m.SetFault(FaultDown) }

// Up clears any fault.
func (m *Miner) Up() { m.SetFault(FaultNone) }

// listenLocked opens or closes the listener to match the state: it listens unless closed, rebooting or
// down. A failure to listen again (the port was taken meanwhile) is logged and leaves the miner down.
func (m *Miner) listenLocked() {
	want := !m.closed && !m.rebooting && m.fault != FaultDown
	switch {
	case want && m.ln == nil:
		if err := m.bindLocked(); err != nil {
			slog.Warn("sim: miner cannot listen", "miner", m.id, "addr", m.addr, "err", err)
		}
	case !want && m.ln != nil:
		m.ln.Close()
		m.ln = nil
	}
}

func (m *Miner) bindLocked() error {
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return err
	}
	m.ln, m.addr = ln, ln.Addr().String()
	m.fleet.wg.Add(1)
	go m.acceptLoop(ln)
	return nil
}

func (m *Miner) acceptLoop(ln net.Listener) {
	defer m.fleet.wg.Done()
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of file descriptors and the like: back off briefly
			select {
			case <-m.fleet.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			conn.Close()
			return
		}
		m.conns[conn] = struct{}{}
		m.fleet.wg.Add(1)
		m.mu.Unlock()
		go m.serve(conn)
	}
}

// close stops the miner for good: listener, open connections, pending reboot.
func (m *Miner) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.rebootTimer != nil {
		m.rebootTimer.Stop()
	}
	m.listenLocked()
	for c := range m.conns {
		c.Close()
	}
}

// hashingLocked reports whether the miner is hashing.
func (m *Miner) hashingLocked() bool { return !m.paused && !m.sleeping && !m.rebooting }

// activeLocked returns the index of the pool mining would use: the enabled one with the best priority.
func (m *Miner) activeLocked() int {
	best := -1
	for i, p := range m.pools {
		if !p.disabled && (best < 0 || p.prio < m.pools[best].prio) {
			best = i
		}
	}
	return best
}

func (p pool) status() string {
	if p.disabled {
		return "Disabled"
	}
	return "Alive"
}

// advanceLocked accrues shares on the active pool for the time spent hashing since the last call.
func (m *Miner) advanceLocked(now time.Time) {
	dt := now.Sub(m.lastAdvance).Seconds()
	if dt <= 0 {
		return
	}
	m.lastAdvance = now
	if a := m.activeLocked(); a >= 0 && m.hashingLocked() {
		shares := dt * m.nominal * sharesPerTHs
		m.pools[a].accepted += shares
		m.pools[a].rejected += shares * rejectRatio
	}
}

// reading is what the sensors say at one instant; replies and Snapshot are both built from it.
type reading struct {
	h5GH, havGH float64
	boards      int
	rateGH      [maxBoards]float64
	pcb, chip   [maxBoards]float64
	fans        int
	fanRPM      [maxFans]int
	powerW      float64
	uptime      time.Duration
	sleeping    bool
}

func (r *reading) workMode() string {
	if r.sleeping {
		return "sleep"
	}
	return "normal"
}

// readLocked derives the sensors from the state and the noise window containing now. Values are rounded as
// firmware prints them, so what a client parses equals Snapshot.
func (m *Miner) readLocked(now time.Time) reading {
	w := now.UnixNano() / int64(noiseWindow)
	r := reading{boards: m.model.boards, fans: m.model.fans, sleeping: m.sleeping}
	if !m.rebooting {
		r.uptime = now.Sub(m.bootAt).Truncate(time.Second)
	}
	hashing := m.hashingLocked()
	for i := range r.boards {
		ch := uint64(10 + i)
		switch {
		case hashing:
			r.rateGH[i] = round2(m.nominal * 1e3 / float64(r.boards) * (1 + 0.015*noise(m.seed, w, ch)) * m.cond.rate())
			r.pcb[i] = math.Round(58 + 4*noise(m.seed, w, ch+100) + m.cond.heatC)
			r.chip[i] = r.pcb[i] + 15
		case m.sleeping:
			r.pcb[i], r.chip[i] = 28, 29
		default:
			r.pcb[i], r.chip[i] = 36, 38
		}
		r.h5GH += r.rateGH[i]
	}
	r.h5GH = round2(r.h5GH)
	for i := range r.fans {
		switch {
		case hashing:
			r.fanRPM[i] = int(5400 + 300*noise(m.seed, w, uint64(20+i)))
		case !m.sleeping:
			r.fanRPM[i] = 1800
		}
	}
	switch {
	case hashing:
		r.havGH = round2(m.nominal * 1e3 * (1 + 0.003*noise(m.seed, 0, 6)))
		r.powerW = math.Round(m.model.powerW * m.nominal / m.model.nominalTHs * (1 + 0.01*noise(m.seed, w, 30)))
	case m.sleeping:
		r.powerW = 12
	default:
		r.powerW = 180
	}
	return r
}
