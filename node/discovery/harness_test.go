package discovery

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle sleeps one interval in a goroutine Shutdown does not stop; it ends
		// by itself. Its name depends on inlining.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

// Test sites use fixed ports on their own loopback addresses (no privileges needed for ports above 1024).
const (
	testAPIPort = 34028
	testWebPort = 38080
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is a scanner configuration for loopback: short deadlines, no log noise.
func testConfig() Config {
	return Config{ProbeTimeout: time.Second, Logger: quiet,
		Ports: Ports{CGMiner: []int{testAPIPort}, AntminerWeb: []int{testWebPort}, Proto: []int{testWebPort}}}
}

// startSite starts a mixed simulated site on its own loopback addresses from base, closed at test end.
func startSite(t testing.TB, base string, ant, proto, cgm int) *mixed.Fleet {
	t.Helper()
	f, err := mixed.Start(mixed.Config{Antminer: ant, Proto: proto, CGMiner: cgm, Seed: 42, PerMinerIP: true,
		BaseIP: base, APIPort: testAPIPort, WebPort: testWebPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// siteRange is a target covering the site plus extra empty addresses on either side.
func siteRange(f *mixed.Fleet, extra int) string {
	first, last, _ := f.Range()
	for range extra {
		first, last = first.Prev(), last.Next()
	}
	return first.String() + "-" + last.String()
}

// byAddress indexes devices by the host of their Address.
func byAddress(devs []*pb.Device) map[netip.Addr]*pb.Device {
	out := map[netip.Addr]*pb.Device{}
	for _, d := range devs {
		out[netip.MustParseAddrPort(d.GetAddress()).Addr()] = d
	}
	return out
}

// hostile is a set of misbehaving servers on loopback addresses, each serving one behaviour on one port.
type hostile struct {
	t   testing.TB
	wg  sync.WaitGroup
	mu  sync.Mutex
	lns []net.Listener
	srv []*http.Server
}

func newHostile(t testing.TB) *hostile {
	h := &hostile{t: t}
	t.Cleanup(h.close)
	return h
}

func (h *hostile) listen(addr string, port int) net.Listener {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)).String())
	if err != nil {
		h.t.Fatal(err)
	}
	return ln
}

// tcp serves every connection on addr:port with fn, which must return when the connection is closed.
func (h *hostile) tcp(addr string, port int, fn func(net.Conn)) {
	ln := h.listen(addr, port)
	h.mu.Lock()
	h.lns = append(h.lns, ln)
	h.mu.Unlock()
	h.wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				fn(c)
			})
		}
	})
}

// http serves addr:port with handler.
func (h *hostile) http(addr string, port int, handler http.HandlerFunc) {
	ln := h.listen(addr, port)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.srv = append(h.srv, srv)
	h.mu.Unlock()
	h.wg.Go(func() { _ = srv.Serve(ln) })
}

func (h *hostile) close() {
	h.mu.Lock()
	for _, ln := range h.lns {
		_ = ln.Close()
	}
	for _, s := range h.srv {
		_ = s.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// readRequest reads a CGMiner API request (up to its closing brace), so closing afterwards is a clean close.
func readRequest(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	for {
		if _, err := c.Read(b[:]); err != nil || b[0] == '}' {
			return
		}
	}
}

// holdOpen reads the request and then keeps the connection open, silent, until the peer goes away.
func holdOpen(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}

// scan runs one scan to the end with cfg.
func scan(t testing.TB, cfg Config, req Request) *Result {
	t.Helper()
	s, err := NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.Scan(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
