package spool

import (
	"fmt"
	"testing"

	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec the uplink's stream uses
	"google.golang.org/grpc/mem"
)

// BenchmarkSpoolToWire is a 500-sample telemetry batch's way from the batcher to the telemetry stream's
// frame with the spool as the Outbox, online: Append (encodes, writes), Next (the cached batch), the frame
// gRPC writes, Ack. "encode-again" marshals the batch with gRPC's proto codec as the uplink did before the
// spool's bytes were passed through; "spooled-bytes" sends the bytes the spool wrote (what the Uplink does
// with an EncodedTelemetryBatch).
func BenchmarkSpoolToWire(b *testing.B) {
	codec := encoding.GetCodecV2("proto")
	for _, mode := range []string{"encode-again", "spooled-bytes"} {
		b.Run(mode, func(b *testing.B) {
			h := newHarness(b, nil)
			site := newSite(10_000, 500)
			var wireBytes int
			b.ResetTimer()
			for range b.N {
				in := site.batch()
				if _, err := h.s.Append(in); err != nil {
					b.Fatal(err)
				}
				out, ok, err := h.s.Next(telemetry.KindTelemetry, in.Seq-1)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				var frame mem.BufferSlice
				if mode == "encode-again" {
					if frame, err = codec.Marshal(out.Telemetry); err != nil {
						b.Fatal(err)
					}
				} else {
					frame = mem.BufferSlice{mem.SliceBuffer(out.Encoded)}
				}
				wireBytes += frame.Len()
				frame.Free()
				if _, err := h.s.Ack(telemetry.KindTelemetry, in.Seq); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(wireBytes)/float64(b.N), "wire-B/batch")
		})
	}
}

// BenchmarkSpoolBatchSize is the node's cost per sample of one batch from Append to Ack (fsynced write,
// cached read, the frame's bytes, ack) by batch size: what a shorter flush timer costs a site whose batches
// it closes before they fill (telemetry.Config.FlushInterval).
func BenchmarkSpoolBatchSize(b *testing.B) {
	for _, size := range []int{10, 50, 500} {
		b.Run(fmt.Sprintf("samples=%d", size), func(b *testing.B) {
			h := newHarness(b, nil)
			site := newSite(10_000, size)
			b.ResetTimer()
			for range b.N {
				in := site.batch()
				if _, err := h.s.Append(in); err != nil {
					b.Fatal(err)
				}
				out, ok, err := h.s.Next(telemetry.KindTelemetry, in.Seq-1)
				if err != nil || !ok || len(out.Encoded) == 0 {
					b.Fatal(ok, err)
				}
				if _, err := h.s.Ack(telemetry.KindTelemetry, in.Seq); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sample")
		})
	}
}
