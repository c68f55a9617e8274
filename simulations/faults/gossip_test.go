package faults

import (
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func netTransport(t *testing.T, ip string) *memberlist.NetTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: 0,
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

func addrOf(ip string, nt *memberlist.NetTransport) string {
	return fmt.Sprintf("%s:%d", ip, nt.GetAutoBindPort())
}

// TestGossipTransportFilters: packets and streams through two wrapped transports, cut per direction.
func TestGossipTransportFilters(t *testing.T) {
	a := NewGossipTransport(netTransport(t, "127.0.0.2"))
	bInner := netTransport(t, "127.0.0.3")
	b := NewGossipTransport(bInner)
	defer a.Shutdown()
	defer b.Shutdown()
	if _, _, err := a.FinalAdvertiseAddr("", 0); err != nil { // as memberlist does when it starts
		t.Fatal(err)
	}
	bAddr := addrOf("127.0.0.3", bInner)

	recv := func() bool {
		select {
		case p := <-b.PacketCh():
			return string(p.Buf) == "hello"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}
	send := func() {
		if _, err := a.WriteTo([]byte("hello"), bAddr); err != nil {
			t.Fatal(err)
		}
	}
	send()
	if !recv() {
		t.Fatal("packet lost with no cut")
	}

	a.Isolate(Up) // a's outgoing cut
	send()
	if recv() {
		t.Fatal("packet crossed a's outgoing cut")
	}
	if _, err := a.DialTimeout(bAddr, 50*time.Millisecond); err == nil {
		t.Fatal("dial crossed a's outgoing cut")
	}
	a.Heal()

	b.Block("127.0.0.2", Down) // b refuses what comes from a
	send()
	if recv() {
		t.Fatal("packet crossed b's incoming block")
	}
	c, err := a.DialTimeout(bAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("b kept a stream from a blocked peer")
	}
	c.Close()
	b.Block("127.0.0.2", 0)
	send()
	if !recv() {
		t.Fatal("packet lost after unblocking")
	}
	if p, s := b.Dropped(); p != 1 || s != 1 {
		t.Errorf("b dropped %d packets, refused %d streams", p, s)
	}
}

// TestGossipTransportPartitionsMemberlist: two real memberlist members; isolating one makes the other
// declare it dead.
func TestGossipTransportPartitionsMemberlist(t *testing.T) {
	start := func(name, ip string) (*memberlist.Memberlist, *GossipTransport, string) {
		inner := netTransport(t, ip)
		tr := NewGossipTransport(inner)
		cfg := memberlist.DefaultLANConfig()
		cfg.Name, cfg.Transport = name, tr
		cfg.BindAddr, cfg.BindPort, cfg.AdvertiseAddr, cfg.AdvertisePort = ip, inner.GetAutoBindPort(), ip, inner.GetAutoBindPort()
		cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult = 100*time.Millisecond, 50*time.Millisecond, 1
		cfg.GossipInterval, cfg.TCPTimeout = 50*time.Millisecond, 200*time.Millisecond
		cfg.LogOutput = io.Discard
		ml, err := memberlist.Create(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ml, tr, addrOf(ip, inner)
	}
	a, aT, _ := start("a", "127.0.0.4")
	b, _, bAddr := start("b", "127.0.0.5")
	defer func() { _ = a.Shutdown(); _ = b.Shutdown() }()
	if _, err := a.Join([]string{bAddr}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "b to see a", func() bool { return b.NumMembers() == 2 })
	aT.Isolate(Both)
	waitFor(t, 5*time.Second, "b to declare a dead", func() bool { return b.NumMembers() == 1 })
}
