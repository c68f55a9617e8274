package faults

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipTransport wraps a memberlist transport so a test can cut a pair member off the site LAN, in one or
// both directions, without touching the operating system: outgoing UDP packets are dropped silently (as a
// partitioned network drops them), outgoing TCP dials wait out their timeout and fail, incoming packets are
// dropped and incoming streams closed unread. Block works per peer IP, so give each member its own
// loopback address (127.0.0.2, 127.0.0.3) to cut one peer of several (on loopback, streams are dialed from
// the member's advertised address so that the peer sees it); Isolate cuts everything.
//
// It owns two goroutines (forwarding the wrapped transport's packets and streams through the filters);
// Shutdown, which memberlist calls, stops them and the wrapped transport.
type GossipTransport struct {
	inner memberlist.NodeAwareTransport

	mu       sync.Mutex
	self     net.IP // the advertised address, once memberlist asked for it
	isolated Direction
	blocked  map[string]Direction // peer IP → cut directions

	packets  chan *memberlist.Packet
	streams  chan net.Conn
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	droppedPackets, refusedStreams atomic.Int64
}

// NewGossipTransport wraps inner (a *memberlist.NetTransport, typically) and starts forwarding.
func NewGossipTransport(inner memberlist.Transport) *GossipTransport {
	na, ok := inner.(memberlist.NodeAwareTransport)
	if !ok {
		na = nodeAware{inner}
	}
	t := &GossipTransport{inner: na, blocked: map[string]Direction{}, packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn), done: make(chan struct{})}
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t
}

// Isolate cuts this member off in the given directions (Up: what it sends, Down: what it receives);
// 0 undoes it.
func (t *GossipTransport) Isolate(d Direction) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.isolated = d
}

// Block cuts traffic with the peer at ip in the given directions; 0 undoes it.
func (t *GossipTransport) Block(ip string, d Direction) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d == 0 {
		delete(t.blocked, ip)
		return
	}
	t.blocked[ip] = d
}

// Heal removes every cut.
func (t *GossipTransport) Heal() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.isolated = 0
	clear(t.blocked)
}

// Dropped returns the incoming and outgoing packets dropped and the streams refused so far.
func (t *GossipTransport) Dropped() (packets, streams int64) {
	return t.droppedPackets.Load(), t.refusedStreams.Load()
}

// cut reports whether traffic with addr ("host:port" or a net.Addr's string) in direction d is cut.
func (t *GossipTransport) cut(addr string, d Direction) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.isolated&d != 0 || t.blocked[host]&d != 0
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *GossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	a, p, err := t.inner.FinalAdvertiseAddr(ip, port)
	if err == nil {
		t.mu.Lock()
		t.self = a
		t.mu.Unlock()
	}
	return a, p, err
}

// WriteTo implements memberlist.Transport.
func (t *GossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.cut(addr, Up) {
		t.droppedPackets.Add(1)
		return time.Now(), nil
	}
	return t.inner.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *GossipTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.cut(addr.Addr, Up) {
		t.droppedPackets.Add(1)
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, addr)
}

// PacketCh implements memberlist.Transport.
func (t *GossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *GossipTransport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout implements memberlist.Transport.
func (t *GossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *GossipTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.cut(addr.Addr, Up) {
		t.mu.Lock()
		self := t.self
		t.mu.Unlock()
		if self.IsLoopback() {
			// The kernel would pick 127.0.0.1 as the source; dial from this member's own address so the
			// peer can block it by IP.
			d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: self}}
			return d.Dial("tcp", addr.Addr)
		}
		return t.inner.DialAddressTimeout(addr, timeout)
	}
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-t.done:
	}
	return nil, fmt.Errorf("dial %s: i/o timeout (%w LAN partition)", addr.Addr, ErrInjected)
}

// Shutdown implements memberlist.Transport.
func (t *GossipTransport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		close(t.done)
		err = t.inner.Shutdown()
		t.wg.Wait()
	})
	return err
}

func (t *GossipTransport) forwardPackets() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p := <-in:
			if p.From != nil && t.cut(p.From.String(), Down) {
				t.droppedPackets.Add(1)
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *GossipTransport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			if t.cut(c.RemoteAddr().String(), Down) {
				t.refusedStreams.Add(1)
				c.Close()
				continue
			}
			select {
			case t.streams <- c:
			case <-t.done:
				c.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

// nodeAware lifts a plain Transport to NodeAwareTransport, as memberlist does internally.
type nodeAware struct{ memberlist.Transport }

func (n nodeAware) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return n.WriteTo(b, a.Addr)
}

func (n nodeAware) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return n.DialTimeout(a.Addr, timeout)
}

var _ memberlist.NodeAwareTransport = (*GossipTransport)(nil)
