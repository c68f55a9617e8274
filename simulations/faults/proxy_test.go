package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func startProxy(t *testing.T, p *Proxy) *Proxy {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	return p
}

func set(t *testing.T, p *Proxy, m Mode) {
	t.Helper()
	if err := p.Set(m); err != nil {
		t.Fatal(err)
	}
}

// tcpServer runs handle for every connection until the test ends.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused checks that a connection to addr is reset at once: the dial itself, or the first read, fails
// without waiting for a timeout.
func refused(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		return fmt.Errorf("dial: %w, want a reset", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("read on a refused connection: %v, want a reset", err)
	}
	return nil
}

func TestProxyValidation(t *testing.T) {
	if err := (&Proxy{}).Start(); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("Start without upstream: %v", err)
	}
	if err := (&Proxy{Upstream: "x:1"}).Set(Pass()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Set before Start: %v", err)
	}
	for _, m := range []Mode{{Delay: -1}, {BytesPerSecond: -5}, {Stall: 8}} {
		if m.Validate() == nil {
			t.Errorf("%+v validated", m)
		}
	}
	if got := (Mode{Stall: Down, Delay: time.Second, ResetAfter: 10}).String(); got != "stall-down,delay=1s±0s,reset-after=10B" {
		t.Errorf("String = %q", got)
	}
	p := startProxy(t, &Proxy{Upstream: "127.0.0.1:1"})
	if err := p.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	p.Close()
	if err := p.Set(Pass()); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
}

// TestProxyPartitionAndHeal: a gRPC stream through the proxy dies with Unavailable when the link is
// partitioned, new streams cannot open while it lasts, and once healed the client reconnects by itself.
func TestProxyPartitionAndHeal(t *testing.T) {
	addr, gw := startGateway(t)
	p := startProxy(t, &Proxy{Upstream: addr, Seed: 1})
	c := dial(t, p.Addr())

	s, _ := heartbeat(t, c)
	if err := s.Send(ping(1)); err != nil {
		t.Fatal(err)
	}
	if pong, err := s.Recv(); err != nil || pong.GetServerTimeUnixMs() != 1 {
		t.Fatalf("pong through a passing proxy: %v %v", pong, err)
	}

	set(t, p, Partition())
	_, err := s.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv after partition: %v, want Unavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if s2, err := c.Heartbeat(ctx); err == nil {
		if err = s2.Send(ping(2)); err == nil {
			_, err = s2.Recv()
		}
		if err == nil {
			t.Fatal("a stream worked across the partition")
		}
	}
	if st := p.Stats(); st.Cut == 0 || st.Refused == 0 {
		t.Errorf("stats after partition: %+v, want cut and refused connections", st)
	}

	set(t, p, Pass())
	waitFor(t, 5*time.Second, "a stream after healing", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := c.Heartbeat(ctx)
		if err != nil {
			return false
		}
		if s.Send(ping(3)) != nil {
			return false
		}
		pong, err := s.Recv()
		return err == nil && pong.GetServerTimeUnixMs() == 3
	})
	if got := gw.received(); got[0] != 1 || got[len(got)-1] != 3 {
		t.Errorf("gateway saw %v", got)
	}
}

// TestProxyBlackhole: nothing moves while the hole lasts, nothing is lost when it ends.
func TestProxyBlackhole(t *testing.T) {
	addr, gw := startGateway(t)
	p := startProxy(t, &Proxy{Upstream: addr})
	s, _ := heartbeat(t, dial(t, p.Addr()))
	if err := s.Send(ping(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}

	set(t, p, Blackhole())
	if err := s.Send(ping(2)); err != nil {
		t.Fatal(err)
	}
	got := recvAsync(s)
	select {
	case r := <-got:
		t.Fatalf("received through a black hole: %v %v", r.pong, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if n := len(gw.received()); n != 1 {
		t.Fatalf("gateway saw %d pings through a black hole, want 1", n)
	}
	set(t, p, Pass())
	select {
	case r := <-got:
		if r.err != nil || r.pong.GetServerTimeUnixMs() != 2 {
			t.Fatalf("after the hole: %v %v, want pong 2", r.pong, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held ping never arrived")
	}
}

// TestProxyAsymmetric: with the downstream stalled the gateway still hears the node (its heartbeats
// arrive) but the node hears nothing back: the case where the cloud thinks the active is alive while the
// active gets no lease renewals.
func TestProxyAsymmetric(t *testing.T) {
	addr, gw := startGateway(t)
	p := startProxy(t, &Proxy{Upstream: addr})
	s, _ := heartbeat(t, dial(t, p.Addr()))
	set(t, p, Asymmetric(Down))
	for i := int64(1); i <= 3; i++ {
		if err := s.Send(ping(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "the gateway to hear 3 pings", func() bool { return len(gw.received()) == 3 })
	got := recvAsync(s)
	select {
	case r := <-got:
		t.Fatalf("pong crossed a stalled downstream: %v %v", r.pong, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	set(t, p, Pass())
	if r := <-got; r.err != nil || r.pong.GetServerTimeUnixMs() != 1 {
		t.Fatalf("first pong after healing: %v %v", r.pong, r.err)
	}
}

func TestProxyDelayKeepsOrder(t *testing.T) {
	p := startProxy(t, &Proxy{Upstream: tcpServer(t, echo), Seed: 7})
	c := dialTCP(t, p.Addr())
	set(t, p, Delay(60*time.Millisecond, 40*time.Millisecond))

	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 40*time.Millisecond { // ≥ 20ms each way
		t.Fatalf("round trip %s through a 60±40ms delay each way", rtt)
	}

	// Many small writes with jitter larger than their spacing still come back in order.
	var want bytes.Buffer
	done := make(chan error, 1)
	go func() {
		for i := range 40 {
			b := []byte{byte('a' + i%26)}
			want.Write(b)
			if _, err := c.Write(b); err != nil {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- nil
	}()
	got := make([]byte, 40)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("order changed: %q, want %q", got, want.Bytes())
	}
}

func TestProxyBandwidth(t *testing.T) {
	var got atomic.Int64
	sink := tcpServer(t, func(c net.Conn) { n, _ := io.Copy(io.Discard, c); got.Add(n) })
	p := startProxy(t, &Proxy{Upstream: sink})
	set(t, p, Bandwidth(100_000))
	c := dialTCP(t, p.Addr())
	start := time.Now()
	if _, err := c.Write(make([]byte, 50_000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "50 kB to cross", func() bool { return p.Stats().BytesUp == 50_000 })
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("50 kB crossed a 100 kB/s link in %s", d)
	}
}

func TestProxyResetAfter(t *testing.T) {
	var got atomic.Int64
	sink := tcpServer(t, func(c net.Conn) { n, _ := io.Copy(io.Discard, c); got.Add(n) })
	p := startProxy(t, &Proxy{Upstream: sink})
	set(t, p, ResetAfter(1000))
	c := dialTCP(t, p.Addr())
	_, _ = c.Write(make([]byte, 5000))
	waitFor(t, 2*time.Second, "the reset", func() bool { return p.Stats().Reset == 1 })
	waitFor(t, 2*time.Second, "the sink to finish", func() bool { return got.Load() == 1000 })
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after reset succeeded")
	}

	// A new mode generation gives every connection a fresh budget.
	set(t, p, ResetAfter(10))
	c2 := dialTCP(t, p.Addr())
	_, _ = c2.Write(make([]byte, 100))
	waitFor(t, 2*time.Second, "the second reset", func() bool { return p.Stats().Reset == 2 })
	waitFor(t, 2*time.Second, "10 more bytes", func() bool { return got.Load() == 1010 })
}

func TestProxyPartitionRefusesNewConnections(t *testing.T) {
	p := startProxy(t, &Proxy{Upstream: tcpServer(t, echo)})
	set(t, p, Partition())
	if err := refused(p.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "refused count", func() bool { return p.Stats().Refused == 1 })
}

func TestProxyUpstreamDownIsRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, &Proxy{Upstream: dead})
	if err := refused(p.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "refused count", func() bool { return p.Stats().Refused == 1 })
}

// TestProxyMinerHangsMidCommand: in front of a real simulated CGMiner, a proxy that matches write
// commands and stalls their replies makes a miner that carries out a restart and never answers, while
// reads still work; the miner's write log names the real client address (PreserveSourceIP).
func TestProxyMinerHangsMidCommand(t *testing.T) {
	fleet, err := sim.Start(sim.Config{Count: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	m := fleet.Miners()[0]
	p := startProxy(t, &Proxy{Upstream: m.Addr(), Match: CGMinerWrite, PreserveSourceIP: true})
	set(t, p, Asymmetric(Down))

	request := func(cmd string, wait time.Duration) ([]byte, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}, Timeout: time.Second}
		c, err := d.Dial("tcp", p.Addr())
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if _, err := c.Write([]byte(`{"command":"` + cmd + `"}`)); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		return io.ReadAll(c)
	}
	if reply, err := request("summary", 5*time.Second); err != nil || !bytes.Contains(reply, []byte("SUMMARY")) {
		t.Fatalf("read through the proxy: %q %v", reply, err)
	}
	reply, err := request("restart", 500*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || len(reply) != 0 {
		t.Fatalf("restart answered: %q %v, want a hang", reply, err)
	}
	log := m.WriteLog()
	if len(log) != 1 || log[0].Command != "restart" || !log[0].Accepted || !strings.HasPrefix(log[0].Remote, "127.0.0.7:") {
		t.Fatalf("miner write log %+v, want one accepted restart from 127.0.0.7", log)
	}
}

func TestMatchers(t *testing.T) {
	for in, want := range map[string]bool{
		`{"command":"restart"}`:                               true,
		`{"command": "addpool","parameter":"u,w,p"}` + "\x00": true,
		`{"command":"summary+stats"}`:                         false,
		`{"command":"summary+restart"}`:                       true,
		`{"command":"pools"}`:                                 false,
		`not json`:                                            false,
	} {
		if got := CGMinerWrite([]byte(in)); got != want {
			t.Errorf("CGMinerWrite(%q) = %v", in, got)
		}
	}
	for in, want := range map[string]bool{
		"POST /cgi-bin/set_miner_conf.cgi HTTP/1.1\r\nHost: x\r\n": true,
		"GET /cgi-bin/reboot.cgi HTTP/1.1\r\n":                     true,
		"GET /cgi-bin/summary.cgi HTTP/1.1\r\n":                    false,
		"POST /api/v1/auth/login HTTP/1.1\r\n":                     false,
		"PUT /api/v1/mining/target HTTP/1.1\r\n":                   true,
		`{"body":"only"}`:                                          false,
	} {
		if got := HTTPWrite([]byte(in)); got != want {
			t.Errorf("HTTPWrite(%q) = %v", in, got)
		}
	}
}
