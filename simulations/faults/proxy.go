package faults

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Direction is a direction of flow through a Proxy.
type Direction uint8

const (
	// Up is client → upstream (a node's bytes toward the cloud, or toward a miner).
	Up Direction = 1 << iota
	// Down is upstream → client.
	Down
	// Both directions.
	Both = Up | Down
)

func (d Direction) String() string {
	switch d {
	case 0:
		return "none"
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Mode is how a Proxy treats traffic. Fields combine (a delayed, bandwidth-limited link); the zero Mode
// passes everything. Set switches modes at run time; a change applies to every connection at once.
type Mode struct {
	// Partition refuses new connections (accepted and reset at once: the client sees a reset, never a
	// hang) and resets every open one. Nothing reaches either side until the mode changes.
	Partition bool
	// Stall stops the flow in the given directions without closing anything, as a black hole does to TCP:
	// the proxy stops reading, so the sender's buffers fill and it blocks, and bytes already read are held.
	// When the stall ends the held bytes are delivered in order, as TCP retransmission would. Stall Both
	// is a black hole; one direction is an asymmetric partition. New connections are accepted and stall too.
	Stall Direction
	// Delay is added to every chunk's delivery, with a uniform ±Jitter (seeded), order kept: a chunk is
	// never delivered before the one read before it.
	Delay, Jitter time.Duration
	// BytesPerSecond limits each direction of each connection; 0 is unlimited.
	BytesPerSecond int64
	// ResetAfter resets each connection once it has carried this many bytes (both directions together)
	// since the mode was set, delivering exactly that many; 0 never.
	ResetAfter int64
}

// Pass is the zero Mode: everything flows.
func Pass() Mode { return Mode{} }

// Partition refuses new connections and resets open ones.
func Partition() Mode { return Mode{Partition: true} }

// Blackhole stalls both directions.
func Blackhole() Mode { return Mode{Stall: Both} }

// Asymmetric stalls one direction only.
func Asymmetric(stalled Direction) Mode { return Mode{Stall: stalled} }

// Delay adds d ± jitter to every chunk.
func Delay(d, jitter time.Duration) Mode { return Mode{Delay: d, Jitter: jitter} }

// Bandwidth limits each direction of each connection to bps bytes per second.
func Bandwidth(bps int64) Mode { return Mode{BytesPerSecond: bps} }

// ResetAfter resets each connection after n bytes.
func ResetAfter(n int64) Mode { return Mode{ResetAfter: n} }

func (m Mode) String() string {
	var parts []string
	if m.Partition {
		parts = append(parts, "partition")
	}
	if m.Stall == Both {
		parts = append(parts, "blackhole")
	} else if m.Stall != 0 {
		parts = append(parts, "stall-"+m.Stall.String())
	}
	if m.Delay > 0 || m.Jitter > 0 {
		parts = append(parts, fmt.Sprintf("delay=%s±%s", m.Delay, m.Jitter))
	}
	if m.BytesPerSecond > 0 {
		parts = append(parts, fmt.Sprintf("bandwidth=%dB/s", m.BytesPerSecond))
	}
	if m.ResetAfter > 0 {
		parts = append(parts, fmt.Sprintf("reset-after=%dB", m.ResetAfter))
	}
	if len(parts) == 0 {
		return "pass"
	}
	return strings.Join(parts, ",")
}

// Validate reports a mode that cannot be applied.
func (m Mode) Validate() error {
	var errs []error
	if m.Delay < 0 || m.Jitter < 0 {
		errs = append(errs, fmt.Errorf("faults: delay %s and jitter %s must not be negative", m.Delay, m.Jitter))
	}
	if m.BytesPerSecond < 0 || m.ResetAfter < 0 {
		errs = append(errs, fmt.Errorf("faults: bandwidth %d and reset-after %d must not be negative", m.BytesPerSecond, m.ResetAfter))
	}
	if m.Stall&^Both != 0 {
		errs = append(errs, fmt.Errorf("faults: stall %s is not a direction", m.Stall))
	}
	return errors.Join(errs...)
}

// ProxyStats counts what a Proxy did.
type ProxyStats struct {
	Accepted  int64 // connections accepted and relayed
	Refused   int64 // connections reset on accept (Partition, or the upstream refused)
	Cut       int64 // open connections reset by Partition
	Reset     int64 // connections reset by ResetAfter
	BytesUp   int64
	BytesDown int64
	Active    int // connections open now
}

// Proxy is a TCP fault proxy on loopback: clients dial Addr, the proxy dials Upstream for each connection
// and relays bytes both ways, applying the current Mode. Set Listen and Upstream, call Start, switch modes
// with Set, and Close it: Close stops every goroutine it started and returns after they ended.
//
// Each connection costs five goroutines (a reader and a writer per direction, and its closer).
// Randomness (jitter) comes from Seed and the connection's accept index, so one seed replays one schedule
// of delays for the same sequence of chunks.
type Proxy struct {
	// Listen is the address to listen on. Default "127.0.0.1:0".
	Listen string
	// Upstream is the host:port to relay to. Required.
	Upstream string
	// Seed seeds the jitter.
	Seed int64
	// PreserveSourceIP dials the upstream from the client's IP (any port), so an upstream that logs its
	// peers (a simulated miner's write log) still sees which client wrote. It works on loopback, where
	// every 127/8 address is local; elsewhere the dial fails unless the address is this host's.
	PreserveSourceIP bool
	// Match, when set, confines the mode to the connections it picks: every chunk a client sends is
	// passed to it until it returns true, and from then on that connection is under the mode; until then
	// it passes. The CGMiner API sends one request per connection, so matching its write commands makes a
	// miner that carries out a write and never answers (Asymmetric(Down)): a hang mid-command. With Match
	// set, new connections are never refused (nothing is known of them yet); Partition resets a connection
	// when it matches.
	Match func(clientBytes []byte) bool
	// DialTimeout bounds the upstream dial. Default 5s.
	DialTimeout time.Duration
	// Logger receives connection errors at debug level. Default slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	ln      net.Listener
	mode    Mode
	gen     uint64
	changed chan struct{} // closed and replaced by every Set
	conns   map[*proxyConn]struct{}
	started bool
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	nconn   uint64

	accepted, refused, cut, reset, up, down atomic.Int64
}

// Start binds Listen and starts accepting.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.started:
		return ErrStarted
	case p.Upstream == "":
		return fmt.Errorf("proxy: %w", ErrNoUpstream)
	}
	listen := p.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy listen %s: %w", listen, err)
	}
	if p.DialTimeout == 0 {
		p.DialTimeout = 5 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	p.ln, p.started = ln, true
	p.changed = make(chan struct{})
	p.conns = map[*proxyConn]struct{}{}
	p.done = make(chan struct{})
	p.wg.Add(1)
	go p.acceptLoop(ln)
	return nil
}

// Addr is the address clients dial ("" before Start).
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Set switches the mode for every connection, open and new. A Partition resets the open connections
// before Set returns.
func (p *Proxy) Set(m Mode) error {
	if err := m.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed || !p.started {
		p.mu.Unlock()
		if !p.started {
			return ErrNotStarted
		}
		return ErrClosed
	}
	p.mode = m
	p.gen++
	close(p.changed)
	p.changed = make(chan struct{})
	var victims []*proxyConn
	if m.Partition {
		for c := range p.conns {
			if c.underMode() {
				victims = append(victims, c)
			}
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		p.cut.Add(1)
		c.kill(true)
	}
	return nil
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Stats returns the counters so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	active := len(p.conns)
	p.mu.Unlock()
	return ProxyStats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load(), Reset: p.reset.Load(),
		BytesUp: p.up.Load(), BytesDown: p.down.Load(), Active: active}
}

// Close stops accepting, closes every connection and waits for every goroutine the proxy started.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.started || p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.kill(false)
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// state returns the mode, its generation and the channel that closes when it next changes.
func (p *Proxy) state() (Mode, uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.gen, p.changed
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // out of descriptors and the like: back off briefly
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		refuse := p.mode.Partition && p.Match == nil
		p.nconn++
		id := p.nconn
		if !refuse {
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if refuse {
			p.refused.Add(1)
			resetConn(conn)
			continue
		}
		go p.open(id, conn)
	}
}

// open dials the upstream for one accepted client and starts relaying.
func (p *Proxy) open(id uint64, client net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: p.DialTimeout}
	if p.PreserveSourceIP {
		if a, ok := client.RemoteAddr().(*net.TCPAddr); ok {
			d.LocalAddr = &net.TCPAddr{IP: a.IP}
		}
	}
	up, err := d.Dial("tcp", p.Upstream)
	if err != nil {
		p.Logger.Debug("proxy: upstream dial failed", "upstream", p.Upstream, "err", err)
		p.refused.Add(1)
		resetConn(client)
		return
	}
	c := &proxyConn{p: p, id: id, client: client, upstream: up, done: make(chan struct{})}
	c.matched.Store(p.Match == nil)
	p.mu.Lock()
	if p.closed || (p.mode.Partition && p.Match == nil) {
		p.mu.Unlock()
		p.refused.Add(1)
		resetConn(client)
		up.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(5)
	p.mu.Unlock()
	p.accepted.Add(1)
	up2down, down2up := make(chan chunk, 8), make(chan chunk, 8)
	go c.read(Up, client, down2up)
	go c.write(Up, up, down2up)
	go c.read(Down, up, up2down)
	go c.write(Down, client, up2down)
	go c.closer()
}

// chunk is bytes read from one side, waiting to be written to the other.
type chunk struct {
	b      []byte
	readAt time.Time
}

// proxyConn is one relayed connection.
type proxyConn struct {
	p                *Proxy
	id               uint64
	client, upstream net.Conn
	done             chan struct{} // closed by kill
	killOnce         sync.Once
	halves           atomic.Int32 // directions that ended cleanly (EOF relayed)
	// matched: the mode applies to this connection (from the start when the proxy has no Match).
	matched atomic.Bool

	mu         sync.Mutex
	carried    int64
	carriedGen uint64
}

func (c *proxyConn) underMode() bool { return c.matched.Load() }

// mode returns the mode as it applies to this connection.
func (c *proxyConn) mode() (Mode, uint64, <-chan struct{}) {
	m, gen, ch := c.p.state()
	if !c.underMode() {
		m = Mode{}
	}
	return m, gen, ch
}

// kill closes both sides (with a reset when rst) and wakes every goroutine of the connection.
func (c *proxyConn) kill(rst bool) {
	c.killOnce.Do(func() {
		if rst {
			resetConn(c.client)
			resetConn(c.upstream)
		} else {
			c.client.Close()
			c.upstream.Close()
		}
		close(c.done)
	})
}

// closer waits for the connection to end and forgets it.
func (c *proxyConn) closer() {
	defer c.p.wg.Done()
	<-c.done
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// flow blocks while dir is stalled; false when the connection ended or is partitioned.
func (c *proxyConn) flow(dir Direction) bool {
	for {
		m, _, changed := c.mode()
		if m.Partition {
			c.kill(true)
			return false
		}
		if m.Stall&dir == 0 {
			select {
			case <-c.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-changed:
		case <-c.done:
			return false
		}
	}
}

// read moves bytes from src into ch, not reading while dir is stalled.
func (c *proxyConn) read(dir Direction, src net.Conn, ch chan<- chunk) {
	defer c.p.wg.Done()
	defer close(ch)
	buf := make([]byte, 32<<10)
	for {
		if !c.flow(dir) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			b := append([]byte(nil), buf[:n]...)
			if dir == Up && !c.underMode() && c.p.Match(b) {
				c.matched.Store(true)
			}
			select {
			case ch <- chunk{b: b, readAt: time.Now()}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.kill(true) // a reset (or our own close) ends both directions
			}
			return
		}
	}
}

// write delivers chunks from ch to dst under the mode, then half-closes dst at EOF.
func (c *proxyConn) write(dir Direction, dst net.Conn, ch <-chan chunk) {
	defer c.p.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(c.p.Seed), c.id<<1|uint64(dir>>1)))
	var last time.Time // delivery time of the previous chunk
	var nextSlot time.Time
	counter := &c.p.up
	if dir == Down {
		counter = &c.p.down
	}
	for {
		var ck chunk
		var ok bool
		select {
		case ck, ok = <-ch:
		case <-c.done:
			return
		}
		if !ok {
			c.halfClose(dst)
			return
		}
		m, _, _ := c.mode()
		if m.Delay > 0 || m.Jitter > 0 {
			d := m.Delay
			if m.Jitter > 0 {
				d += time.Duration(rng.Int64N(int64(2*m.Jitter)+1)) - m.Jitter
			}
			at := ck.readAt.Add(max(d, 0))
			if at.Before(last) {
				at = last
			}
			last = at
			if !c.sleepUntil(at) {
				return
			}
		}
		if !c.flow(dir) {
			return
		}
		b := ck.b
		for len(b) > 0 {
			m, gen, _ := c.mode()
			n := len(b)
			if m.BytesPerSecond > 0 {
				n = min(n, int(max(512, m.BytesPerSecond/50)))
				now := time.Now()
				if nextSlot.Before(now) {
					nextSlot = now
				}
				if !c.sleepUntil(nextSlot) {
					return
				}
				nextSlot = nextSlot.Add(time.Duration(float64(n) / float64(m.BytesPerSecond) * float64(time.Second)))
			}
			cut := false
			if m.ResetAfter > 0 {
				left := c.take(gen, m.ResetAfter, int64(n))
				if left < int64(n) {
					n, cut = int(left), true
				}
			}
			if n > 0 {
				w, err := dst.Write(b[:n])
				counter.Add(int64(w))
				if err != nil {
					c.kill(true)
					return
				}
			}
			if cut {
				c.p.reset.Add(1)
				c.kill(true)
				return
			}
			b = b[n:]
		}
	}
}

// take reserves up to n bytes of the connection's ResetAfter budget for mode generation gen and returns
// how many it may send.
func (c *proxyConn) take(gen uint64, limit, n int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.carriedGen != gen {
		c.carriedGen, c.carried = gen, 0
	}
	left := max(limit-c.carried, 0)
	n = min(n, left)
	c.carried += n
	return n
}

// halfClose relays an EOF; when both directions have ended the connection is closed.
func (c *proxyConn) halfClose(dst net.Conn) {
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	if c.halves.Add(1) == 2 {
		c.kill(false)
	}
}

func (c *proxyConn) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.done:
		return false
	}
}

// resetConn closes conn with a TCP reset rather than a FIN.
func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
