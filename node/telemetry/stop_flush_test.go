package telemetry

import (
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// A graceful stop puts what waits for its batch in the outbox (with a spool, it survives to the next start)
// instead of dropping it: a local command's or an audit record's event must never vanish on a clean restart.
func TestGracefulStopFlushesPendingToOutbox(t *testing.T) {
	h := newHarness(t, DefaultConfig()) // link down: nothing is sent, batches close on size or time only
	h.samples(2)
	h.sys.Root.Send(h.pid, &pb.Event{EventId: "local/n1/c1", Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND,
		LocalCommand: &pb.LocalCommand{CommandId: "c1"}})
	if st := h.status(); st.PendingSamples != 2 {
		t.Fatalf("pending %+v", st)
	}
	if err := h.sys.Root.PoisonFuture(h.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if b, items := h.outbox.Len(KindEvents); b != 1 || items != 1 {
		t.Fatalf("events outbox %d batches, %d items; want the pending event in it", b, items)
	}
	if b, items := h.outbox.Len(KindTelemetry); b != 1 || items != 2 {
		t.Fatalf("telemetry outbox %d batches, %d items", b, items)
	}
}
