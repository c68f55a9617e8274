package grains

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// telemetryBatchSamplesField is TelemetryBatch.samples' field number.
const telemetryBatchSamplesField protowire.Number = 3

// DecodeTelemetryBatch decodes a TelemetryBatch from its wire form into b and returns each sample's
// encoding as it appears in wire (encoded[i] encodes b.Samples[i]; the slices alias wire), for
// Fleet.IngestEncodedTelemetry. encoded is nil when the samples cannot be matched to their bytes one to one,
// which a valid batch never causes.
func DecodeTelemetryBatch(wire []byte, b *pb.TelemetryBatch) (encoded [][]byte, err error) {
	if err := proto.Unmarshal(wire, b); err != nil {
		return nil, fmt.Errorf("decode telemetry batch: %w", err)
	}
	return splitSamples(wire, len(b.GetSamples())), nil
}

// splitSamples returns the bytes of each samples field in wire, in order, or nil unless there are exactly
// n. A samples field of another wire type is what proto.Unmarshal keeps as an unknown field, not a sample,
// so it is skipped the same way.
func splitSamples(wire []byte, n int) [][]byte {
	out := make([][]byte, 0, n)
	for len(wire) > 0 {
		num, typ, l := protowire.ConsumeTag(wire)
		if l < 0 {
			return nil
		}
		wire = wire[l:]
		if num == telemetryBatchSamplesField && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(wire)
			if l < 0 {
				return nil
			}
			out = append(out, v[:len(v):len(v)])
			wire = wire[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(num, typ, wire)
		if l < 0 {
			return nil
		}
		wire = wire[l:]
	}
	if len(out) != n {
		return nil
	}
	return out
}
