package uplink_test

import (
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/protobuf/proto"
)

// A batch sent with its encoding goes on the real gRPC stream as those bytes, with the session token added,
// and the cloud decodes the same batch; a batch that already carries a stale token, or comes without bytes,
// is sent correctly too.
func TestEncodedTelemetryBatchIsSentAsIs(t *testing.T) {
	h := newHarness(t, func(c *uplink.Config) { c.SessionToken = func() string { return "tok-1" } })
	h.waitUp(1)
	batch := func(seq uint64, tok string) *pb.TelemetryBatch {
		return &pb.TelemetryBatch{NodeId: "n1", BatchSeq: seq, SessionToken: tok, Samples: []*pb.Telemetry{
			{MinerId: "m-1", ObservedAtUnixMs: 1_700_000_000_000 + int64(seq), PowerW: 3200, Hashrate_5SThs: 101.5,
				Boards: []*pb.Board{{Index: 1, TempC: 61}}, FansRpm: []int32{5100, 5200}},
			{MinerId: "m-2", PollError: "timeout"}}}
	}
	sent := []*pb.TelemetryBatch{batch(100, ""), batch(101, "stale"), batch(102, "")}
	for i, b := range sent {
		wire, err := proto.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			wire = nil // no bytes: the batch itself is encoded
		}
		h.sys.Root.Send(h.pid, &uplink.EncodedTelemetryBatch{Batch: b, Wire: wire})
	}
	testutil.Eventually(t, "3 batches at the gateway", func() bool { return len(h.gw.Telemetry()) == 3 })
	for i, got := range h.gw.Telemetry() {
		want := proto.Clone(sent[i]).(*pb.TelemetryBatch)
		want.SessionToken = "tok-1"
		if !proto.Equal(got, want) {
			t.Fatalf("batch %d at the gateway:\n got %v\nwant %v", i, got, want)
		}
	}
	if sent[1].GetSessionToken() != "stale" {
		t.Fatal("the sender's batch was modified")
	}
}
