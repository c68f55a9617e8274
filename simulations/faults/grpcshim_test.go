package faults

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

const heartbeatMethod = "/hashfleet.v1.Gateway/Heartbeat"

func setPolicy(t *testing.T, s *Shim, p Policy) {
	t.Helper()
	if err := s.Set(p); err != nil {
		t.Fatal(err)
	}
}

// sendAll sends pings 1..n, closes the send side and drains the pongs.
func sendAll(t *testing.T, c pb.GatewayClient, n int) []int64 {
	t.Helper()
	s, _ := heartbeat(t, c)
	for i := int64(1); i <= int64(n); i++ {
		if err := s.Send(ping(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var pongs []int64
	for {
		p, err := s.Recv()
		if err == io.EOF {
			return pongs
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		pongs = append(pongs, p.GetServerTimeUnixMs())
	}
}

func TestShimDuplicate(t *testing.T) {
	for _, side := range []string{"server-recv", "client-send"} {
		t.Run(side, func(t *testing.T) {
			shim := NewShim(1)
			var c pb.GatewayClient
			var gw *gateway
			if side == "server-recv" {
				setPolicy(t, shim, Policy{Duplicate: 1, On: Recv, Methods: []string{heartbeatMethod}})
				var addr string
				addr, gw = startGateway(t, shim.ServerOptions()...)
				c = dial(t, addr)
			} else {
				setPolicy(t, shim, Policy{Duplicate: 1, On: Send})
				var addr string
				addr, gw = startGateway(t)
				c = dial(t, addr, shim.DialOptions()...)
			}
			t.Cleanup(shim.Wait)
			sendAll(t, c, 3)
			if got := gw.received(); !slices.Equal(got, []int64{1, 1, 2, 2, 3, 3}) {
				t.Fatalf("gateway saw %v, want every ping twice", got)
			}
			if st := shim.Stats(); st.Duplicated != 3 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// reorderRun sends 30 pings through a fresh gateway whose shim reorders received messages, and returns
// the order the handler saw.
func reorderRun(t *testing.T, seed int64) []int64 {
	shim := NewShim(seed)
	setPolicy(t, shim, Policy{Reorder: 0.4, On: Recv, ReorderWindow: 500 * time.Millisecond})
	addr, gw := startGateway(t, shim.ServerOptions()...)
	t.Cleanup(shim.Wait)
	sendAll(t, dial(t, addr), 30)
	return gw.received()
}

func TestShimReorderIsDeterministic(t *testing.T) {
	a := reorderRun(t, 42)
	b := reorderRun(t, 42)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 gave two orders:\n%v\n%v", a, b)
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	want := make([]int64, 30)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(sorted, want) {
		t.Fatalf("not a permutation of 1..30: %v", a)
	}
	if slices.Equal(a, want) {
		t.Fatalf("order unchanged: %v", a)
	}
	if c := reorderRun(t, 43); slices.Equal(c, a) {
		t.Errorf("seeds 42 and 43 gave the same order %v", a)
	}
}

func TestShimReorderSendAndHeldMessageReleased(t *testing.T) {
	// Server side, send direction: pongs overtake each other; a held pong with nothing after it is sent
	// after the window, and a held one is flushed when the handler returns.
	shim := NewShim(3)
	setPolicy(t, shim, Policy{Reorder: 1, On: Send, ReorderWindow: 30 * time.Millisecond})
	addr, _ := startGateway(t, shim.ServerOptions()...)
	t.Cleanup(shim.Wait)
	s, _ := heartbeat(t, dial(t, addr))
	if err := s.Send(ping(1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := s.Recv() // held, released by the window
	if err != nil || p.GetServerTimeUnixMs() != 1 || time.Since(start) < 25*time.Millisecond {
		t.Fatalf("lone pong: %v %v after %s", p, err, time.Since(start))
	}
	pongs := sendAll(t, dial(t, addr), 10)
	sorted := slices.Clone(pongs)
	slices.Sort(sorted)
	if len(pongs) != 10 || slices.Equal(pongs, sorted) {
		t.Fatalf("pongs %v: want all 10, reordered", pongs)
	}
}

func TestShimDropFailsTheStream(t *testing.T) {
	shim := NewShim(1)
	addr, gw := startGateway(t, shim.ServerOptions()...)
	t.Cleanup(shim.Wait)
	s, _ := heartbeat(t, dial(t, addr))
	if err := s.Send(ping(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	setPolicy(t, shim, Policy{Drop: 1, On: Recv}) // switched at run time, on an open stream
	if err := s.Send(ping(2)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv()
	if !IsInjected(err) {
		t.Fatalf("Recv after a drop: %v, want the injected Unavailable", err)
	}
	if got := gw.received(); !slices.Equal(got, []int64{1}) {
		t.Errorf("handler saw %v", got)
	}
	if shim.Stats().Dropped != 1 {
		t.Errorf("stats %+v", shim.Stats())
	}
}

func TestShimClientDropCancelsStream(t *testing.T) {
	shim := NewShim(1)
	addr, _ := startGateway(t)
	c := dial(t, addr, shim.DialOptions()...)
	t.Cleanup(shim.Wait)
	s, _ := heartbeat(t, c)
	setPolicy(t, shim, Policy{Drop: 1, On: Send})
	if err := s.Send(ping(1)); !IsInjected(err) {
		t.Fatalf("Send: %v", err)
	}
	if _, err := s.Recv(); !IsInjected(err) {
		t.Fatalf("Recv after the drop: %v", err)
	}
}

func TestShimDelay(t *testing.T) {
	shim := NewShim(1)
	setPolicy(t, shim, Policy{Delay: 80 * time.Millisecond, On: Send})
	addr, _ := startGateway(t, shim.ServerOptions()...)
	t.Cleanup(shim.Wait)
	s, _ := heartbeat(t, dial(t, addr))
	start := time.Now()
	if err := s.Send(ping(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("round trip %s with an 80ms send delay", d)
	}
}

func TestShimUnary(t *testing.T) {
	shim := NewShim(1)
	addr, gw := startGateway(t, shim.ServerOptions()...)
	client := NewShim(1)
	c := dial(t, addr, client.DialOptions()...)
	call := func() error {
		_, err := c.Challenge(context.Background(), &pb.ChallengeRequest{NodeId: "n1"})
		return err
	}
	setPolicy(t, shim, Policy{Duplicate: 1})
	if err := call(); err != nil || gw.challengeCount() != 2 {
		t.Fatalf("duplicated unary: %v, handler ran %d times", err, gw.challengeCount())
	}
	setPolicy(t, shim, Policy{Duplicate: 1, Methods: []string{heartbeatMethod}}) // not this method
	if err := call(); err != nil || gw.challengeCount() != 3 {
		t.Fatalf("filtered: %v, %d", err, gw.challengeCount())
	}
	setPolicy(t, shim, Policy{})
	setPolicy(t, client, Policy{Drop: 1})
	if err := call(); !IsInjected(err) || gw.challengeCount() != 3 {
		t.Fatalf("dropped unary: %v, handler ran %d times", err, gw.challengeCount())
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{{Drop: 1.5}, {Reorder: -0.1}, {Delay: -time.Second}} {
		if p.Validate() == nil {
			t.Errorf("%+v validated", p)
		}
	}
	if err := NewShim(1).Set(Policy{Duplicate: 2}); err == nil {
		t.Error("Set took a bad policy")
	}
}
