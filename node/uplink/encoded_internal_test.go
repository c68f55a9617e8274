package uplink

import (
	"bytes"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Adding the token to the encoding gives exactly the bytes of marshalling the batch with the token, and the
// codec writes pre-encoded bytes unchanged while encoding and decoding other messages as gRPC's proto codec.
func TestWithSessionTokenMatchesMarshal(t *testing.T) {
	b := &pb.TelemetryBatch{NodeId: "n1", BatchSeq: 7, Samples: []*pb.Telemetry{{MinerId: "m", PowerW: 1, FansRpm: []int32{1, 2}}}}
	wire, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"t", string(make([]byte, 300))} {
		f := withSessionToken(b, wire, tok)
		want, _ := proto.Marshal(&pb.TelemetryBatch{NodeId: "n1", BatchSeq: 7, Samples: b.Samples, SessionToken: tok})
		if !bytes.Equal(f.wire, want) {
			t.Fatalf("token %d bytes: %x, want %x", len(tok), f.wire, want)
		}
	}
	if again, _ := proto.Marshal(b); !bytes.Equal(again, wire) {
		t.Fatal("the encoding was modified")
	}
	// A batch already carrying a token is re-encoded rather than given a second token field.
	b.SessionToken = "old"
	if f := withSessionToken(b, wire, "new"); f.wire != nil || f.batch.GetSessionToken() != "new" || b.SessionToken != "old" {
		t.Fatalf("stale token: %+v", f)
	}

	c := newPassthroughCodec()
	out, err := c.Marshal(&preEncoded{b: wire})
	if err != nil || !bytes.Equal(out.Materialize(), wire) {
		t.Fatalf("pre-encoded: %v", err)
	}
	out, err = c.Marshal(&pb.Ack{BatchSeq: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ack pb.Ack
	if err := c.Unmarshal(out, &ack); err != nil || ack.GetBatchSeq() != 3 {
		t.Fatalf("ack round trip: %v %v", &ack, err)
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &preEncoded{}); err == nil {
		t.Fatal("decoding into a pre-encoded message must fail")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff, 0xff})}, &ack); err == nil {
		t.Fatal("malformed bytes decoded")
	}
}
