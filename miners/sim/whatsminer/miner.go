package whatsminer

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/stateside"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// Fault makes a miner's replies hostile.
type Fault int

const (
	// FaultNone: the miner behaves.
	FaultNone Fault = iota
	// FaultTruncated: every reply is cut off in the middle (v3: inside its frame, whose length still
	// announces the whole).
	FaultTruncated
	// FaultBadEnvelope: encrypted v2 replies carry {"enc":"<not base64>"}; v3 replies are not JSON.
	FaultBadEnvelope
	// FaultOversized: v2 replies are 2 MiB of JSON padding; v3 frames announce 1 GiB.
	FaultOversized
	// FaultClose: connections are closed without a reply.
	FaultClose
)

// Miner is one simulated Whatsminer.
type Miner struct {
	fleet *Fleet
	id    string
	api   *sim.Miner
	model string

	wt *stateside.Writer // the state side's CGMiner API, through which btminer drives its own mining

	mu       sync.Mutex
	v2, v3   net.Listener
	conns    map[net.Conn]struct{}
	closed   bool
	password string
	salt     string // v2 crypt salt of the stored key
	key      string // wmapi.V2Key(password, salt)
	aesKey   [32]byte
	v3salt   string
	tokens   map[string]tokenInfo
	limitW   int
	led      bool // flashing for locate (set_led / set.system.led)
	errCodes []ErrorCode
	fault    Fault
	writes   []Write
}

type tokenInfo struct{ issued time.Time }

// ErrorCode is one error the miner reports (get_error_code, get.device.info error-code).
type ErrorCode struct {
	Code   int
	Reason string
	Since  time.Time
}

// Write is one write command a miner received, accepted or not.
type Write struct {
	MinerID    string
	At         time.Time // Config.Clock
	APIVersion int
	Command    string
	// Params are the command's parameters; values of keys containing "passwd" are "***".
	Params   map[string]string
	Remote   string
	Accepted bool
	// Reason says why a write was refused ("check token err", "ts out of window", ...).
	Reason string
}

// State is what a miner reports now.
type State struct {
	API         sim.State // the state side
	Model       string    // e.g. "M50S"
	PoweredOff  bool      // btminer off (power_off / service stop)
	PowerLimitW int
	Locating    bool // the LED flashes (set_led), until set back to auto or a reboot
	// PowerW and HashrateTHs are what the APIs report: the state side's, capped by the power limit.
	PowerW      float64
	HashrateTHs float64
	BoardTHs    []float64
	Errors      []ErrorCode
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// AddrV2 and AddrV3 return the listeners' host:port.
func (m *Miner) AddrV2() string { return m.v2.Addr().String() }

// AddrV3 returns the v3 listener's host:port.
func (m *Miner) AddrV3() string { return m.v3.Addr().String() }

// API returns the state side of the miner.
func (m *Miner) API() *sim.Miner { return m.api }

// SetPassword changes the admin password; tokens issued before are void.
func (m *Miner) SetPassword(pw string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setPasswordLocked(pw)
	clear(m.tokens)
}

func (m *Miner) setPasswordLocked(pw string) {
	m.password = pw
	m.key = wmapi.V2Key(pw, m.salt)
	m.aesKey = wmapi.DeriveV2(pw, m.salt, "x", "0").AESKey
}

// SetErrors replaces the error codes the miner reports.
func (m *Miner) SetErrors(codes []ErrorCode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errCodes = slices.Clone(codes)
}

// SetFault sets the miner's fault; FaultNone clears it.
func (m *Miner) SetFault(f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = f
}

func (m *Miner) currentFault() Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fault
}

// WriteLog returns a copy of the miner's write log.
func (m *Miner) WriteLog() []Write {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.writes)
}

func (m *Miner) logWrite(w Write) {
	w.MinerID, w.At = m.id, m.fleet.cfg.Clock.Now()
	for k := range w.Params {
		if strings.Contains(k, "passwd") {
			w.Params[k] = "***"
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes = append(m.writes, w)
}

// Snapshot returns what the miner reports now.
func (m *Miner) Snapshot() State {
	api := m.api.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.viewLocked(api)
}

// viewLocked derives the reported values from the state side: power is capped by the limit and hashrate
// scaled with it.
func (m *Miner) viewLocked(api sim.State) State {
	s := State{API: api, Model: m.model, PoweredOff: api.Sleeping, PowerLimitW: m.limitW, Locating: m.led, PowerW: api.PowerW,
		HashrateTHs: api.HashrateTHs, BoardTHs: slices.Clone(api.BoardHashrateTHs), Errors: slices.Clone(m.errCodes)}
	if api.Mining && api.PowerW > float64(m.limitW) && m.limitW > 0 {
		f := float64(m.limitW) / api.PowerW
		s.PowerW = float64(m.limitW)
		s.HashrateTHs = 0
		for i := range s.BoardTHs {
			s.BoardTHs[i] = math.Round(s.BoardTHs[i]*f*100) / 100
			s.HashrateTHs += s.BoardTHs[i]
		}
		s.HashrateTHs = math.Round(s.HashrateTHs*100) / 100
	}
	return s
}

// listen binds both listeners (port 0: ephemeral) and starts their accept loops.
func (m *Miner) listen(host string, portV2, portV3 int) error {
	v2, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(portV2)))
	if err != nil {
		return err
	}
	v3, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(portV3)))
	if err != nil {
		v2.Close()
		return err
	}
	m.mu.Lock()
	m.v2, m.v3 = v2, v3
	m.mu.Unlock()
	m.fleet.state.Go(func() { m.acceptLoop(v2, m.serveV2) })
	m.fleet.state.Go(func() { m.acceptLoop(v3, m.serveV3) })
	return nil
}

func (m *Miner) acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.conns[c] = struct{}{}
		m.fleet.state.Go(func() { // under mu: Close cannot have begun waiting
			defer func() {
				m.mu.Lock()
				delete(m.conns, c)
				m.mu.Unlock()
				c.Close()
			}()
			_ = c.SetDeadline(time.Now().Add(m.fleet.cfg.IOTimeout))
			if m.api.Snapshot().Rebooting {
				return // rebooting: btminer is not up yet
			}
			serve(c)
		})
		m.mu.Unlock()
	}
}

func (m *Miner) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, ln := range []net.Listener{m.v2, m.v3} {
		if ln != nil {
			ln.Close()
		}
	}
	for c := range m.conns {
		c.Close()
	}
}
