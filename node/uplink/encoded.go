package uplink

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// EncodedTelemetryBatch is a TelemetryBatch with its protobuf encoding, for a sender that already holds the
// bytes (the spool keeps the ones it wrote): the Uplink writes Wire on the stream as it is instead of
// encoding Batch again. Wire must be the encoding of Batch; both are read-only once sent.
type EncodedTelemetryBatch struct {
	Batch *pb.TelemetryBatch
	Wire  []byte
}

// telemetryFrame is one message for the telemetry stream's writer: a batch to encode, or its encoding.
type telemetryFrame struct {
	batch *pb.TelemetryBatch
	wire  []byte
}

// preEncoded is a message already in wire form; passthroughCodec writes its bytes unchanged.
type preEncoded struct{ b []byte }

// passthroughCodec is gRPC's proto codec, except that a *preEncoded is written as it is. It keeps the
// codec name "proto": the frames on the stream are the bytes proto.Marshal gives.
type passthroughCodec struct{ proto encoding.CodecV2 }

func newPassthroughCodec() passthroughCodec {
	return passthroughCodec{proto: encoding.GetCodecV2("proto")}
}

func (c passthroughCodec) Name() string { return "proto" }

func (c passthroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(*preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(p.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c passthroughCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(*preEncoded); ok {
		return fmt.Errorf("uplink codec: cannot decode into a pre-encoded message")
	}
	return c.proto.Unmarshal(data, v)
}

// telemetryBatchTokenField is TelemetryBatch.session_token's field number: the highest, so proto.Marshal
// writes it last and appending it to an encoding without a token gives the same bytes as marshalling the
// batch with the token set.
const telemetryBatchTokenField protowire.Number = 4

// withSessionToken returns wire with session_token set to tok, leaving wire unchanged. batch is what wire
// encodes: when it already carries a token, the batch is re-encoded with tok instead (a second token field
// would be valid protobuf, the last one winning, but not the bytes proto.Marshal gives).
func withSessionToken(batch *pb.TelemetryBatch, wire []byte, tok string) telemetryFrame {
	if batch.GetSessionToken() != "" {
		return telemetryFrame{batch: &pb.TelemetryBatch{NodeId: batch.NodeId, BatchSeq: batch.BatchSeq,
			Samples: batch.Samples, SessionToken: tok}}
	}
	out := make([]byte, 0, len(wire)+len(tok)+8)
	out = append(out, wire...)
	out = protowire.AppendTag(out, telemetryBatchTokenField, protowire.BytesType)
	out = protowire.AppendString(out, tok)
	return telemetryFrame{wire: out}
}

func ptr[T any](v T) *T { return &v }
