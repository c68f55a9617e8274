package gateway

import (
	"context"
	"errors"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// EncodedTelemetryFleet is a Fleet that can keep the samples' bytes as the node sent them
// (grains.Fleet.IngestEncodedTelemetry); the gateway then hands it each sample's encoding along with the
// decoded batch, so the store need not encode the samples again.
type EncodedTelemetryFleet interface {
	IngestEncodedTelemetry(ctx context.Context, nodeID string, b *pb.TelemetryBatch, encoded [][]byte) (grains.IngestResult, error)
}

// receivedTelemetry is a telemetry frame as UploadTelemetry receives it: the decoded batch and, when the
// server decodes with wireCodec, each sample's encoding (encoded[i] encodes Samples[i]; nil otherwise).
// It is a proto message through the embedded batch, so stream interceptors and the default codec see the
// batch.
type receivedTelemetry struct {
	*pb.TelemetryBatch
	encoded [][]byte
}

func newReceivedTelemetry() *receivedTelemetry {
	return &receivedTelemetry{TelemetryBatch: &pb.TelemetryBatch{}}
}

// wireCodec is gRPC's proto codec, except that a telemetry frame received into a *receivedTelemetry keeps
// its bytes: the frame is copied out of gRPC's buffers once (as the proto codec does) and the samples'
// encodings alias that copy. It keeps the codec name "proto"; nothing on the wire changes.
type wireCodec struct{ proto encoding.CodecV2 }

func newWireCodec() wireCodec { return wireCodec{proto: encoding.GetCodecV2("proto")} }

func (wireCodec) Name() string { return "proto" }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*receivedTelemetry)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	if r.TelemetryBatch == nil {
		return errors.New("gateway codec: no batch to decode into")
	}
	enc, err := grains.DecodeTelemetryBatch(data.Materialize(), r.TelemetryBatch)
	if err != nil {
		return err
	}
	r.encoded = enc
	return nil
}

// ingestTelemetry hands a received batch to the fleet, with its samples' encodings when both have them.
func (g *Gateway) ingestTelemetry(ctx context.Context, node string, r *receivedTelemetry) (grains.IngestResult, error) {
	if f, ok := g.fleet.(EncodedTelemetryFleet); ok && r.encoded != nil {
		return f.IngestEncodedTelemetry(ctx, node, r.TelemetryBatch, r.encoded)
	}
	return g.fleet.IngestTelemetry(ctx, node, r.TelemetryBatch)
}
