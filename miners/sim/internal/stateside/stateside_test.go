package stateside

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWriteThroughAndClose: every member's Writer changes its own miner over the real CGMiner socket, a
// goroutine started with Go is stopped by Close's stop and waited for, and a second Close does nothing.
func TestWriteThroughAndClose(t *testing.T) {
	f, err := Start("test sim", sim.Config{Count: 2, Clock: clock.NewFake(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	members := f.Members()
	if len(members) != 2 || members[0].Host != "127.0.0.1" || members[0].API.ID() == members[1].API.ID() {
		t.Fatalf("members %+v", members)
	}
	if err := members[1].Writer.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}); err != nil {
		t.Fatal(err)
	}
	if !members[1].API.Snapshot().Sleeping || members[0].API.Snapshot().Sleeping {
		t.Fatalf("curtail reached the wrong miner: %+v / %+v", members[0].API.Snapshot(), members[1].API.Snapshot())
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(members[0].Host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	f.Go(func() {
		defer close(served)
		_, _ = ln.Accept() // returns when the listener closes
	})
	if err := f.Close(func() { ln.Close() }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	default:
		t.Fatal("Close returned before the goroutine it started")
	}
	if err := f.Close(func() { t.Fatal("stop ran twice") }); err != nil {
		t.Fatal(err)
	}
	if err := members[0].Writer.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}); err == nil {
		t.Fatal("write-through after Close succeeded")
	}
}

// TestStartRefusesBadConfig: the CGMiner fleet's own validation reaches the caller.
func TestStartRefusesBadConfig(t *testing.T) {
	if _, err := Start("test sim", sim.Config{Count: -1}); err == nil {
		t.Fatal("negative count accepted")
	}
}
