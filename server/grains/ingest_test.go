package grains

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// The fleet view rebuilds a row's search text only when a sample changes a field the text is made of; after
// any sequence of samples the text is what a full rebuild gives.
func TestFleetViewSearchTextFollowsSamples(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		v := newFleetView(clock.NewFake(t0), time.Minute, slog.New(slog.DiscardHandler))
		ids := []string{"m1", "m2", "m3"}
		v.onDevices(&viewDevices{devices: []*pb.Device{{MinerId: "m1", NodeId: "n1", Model: "S19"}, {MinerId: "m2", NodeId: "n1"}}})
		word := rapid.SampledFrom([]string{"", "S19", "s19", "Antminer S21", "fw-1", "FW-2", "SN01", "02:00:00:00:00:AA"})
		url := rapid.SampledFrom([]string{"stratum+tcp://A:3333", "stratum+tcp://b:3333", "stratum2+tcp://C"})
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for i := range steps {
			var samples []*pb.Telemetry
			for range rapid.IntRange(1, 4).Draw(rt, "batch") {
				s := &pb.Telemetry{MinerId: rapid.SampledFrom(ids).Draw(rt, "miner"), ObservedAtUnixMs: t0.UnixMilli() + int64(i),
					Model: word.Draw(rt, "model"), Firmware: word.Draw(rt, "firmware"), Serial: word.Draw(rt, "serial"),
					Mac: word.Draw(rt, "mac"), Hashrate_5SThs: float64(i)}
				for range rapid.IntRange(0, 3).Draw(rt, "pools") {
					s.Pools = append(s.Pools, &pb.Pool{Url: url.Draw(rt, "url"), Accepted: int64(i)})
				}
				samples = append(samples, s)
			}
			v.onTelemetry(&viewTelemetry{samples: samples, receivedAt: t0})
			for _, id := range ids {
				r, ok := v.rows[id]
				if !ok {
					continue
				}
				want := *r
				want.reindex()
				if r.haystack != want.haystack {
					rt.Fatalf("step %d miner %s: search text %q, want %q", i, id, r.haystack, want.haystack)
				}
			}
		}
	})
}

func TestSearchTextChanged(t *testing.T) {
	base := &pb.Telemetry{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "aa", Pools: []*pb.Pool{{Url: "u1"}, {Url: "u2"}}}
	same := &pb.Telemetry{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "aa", Hashrate_5SThs: 100,
		Pools: []*pb.Pool{{Url: "u1", Accepted: 5}, {Url: "u2", Status: "Dead"}}}
	if searchTextChanged(base, same) {
		t.Error("readings only: reported a change")
	}
	for i, next := range []*pb.Telemetry{
		{Model: "S21", Firmware: "fw", Serial: "sn", Mac: "aa", Pools: base.Pools},
		{Model: "S19", Firmware: "fw2", Serial: "sn", Mac: "aa", Pools: base.Pools},
		{Model: "S19", Firmware: "fw", Serial: "sn2", Mac: "aa", Pools: base.Pools},
		{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "bb", Pools: base.Pools},
		{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "aa", Pools: base.Pools[:1]},
		{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "aa", Pools: []*pb.Pool{{Url: "u1"}, {Url: "u3"}}},
		{Model: "S19", Firmware: "fw", Serial: "sn", Mac: "aa", Pools: []*pb.Pool{{Url: "u1"}, nil}},
	} {
		if !searchTextChanged(base, next) {
			t.Errorf("case %d: change not reported", i)
		}
	}
	if !searchTextChanged(nil, same) {
		t.Error("first sample: change not reported")
	}
}

// DecodeTelemetryBatch hands back each sample's bytes, in order, whatever else the frame holds; a frame whose
// samples cannot be matched one to one to their bytes gives no encodings, and a malformed frame an error.
func TestDecodeTelemetryBatch(t *testing.T) {
	samples := []*pb.Telemetry{{MinerId: "m1", ObservedAtUnixMs: 5, Firmware: "fw"}, {MinerId: "m2"}, {}}
	var frame []byte
	frame = protowire.AppendTag(frame, 1, protowire.BytesType)
	frame = protowire.AppendString(frame, "n1")
	for i, s := range samples {
		b, _ := proto.Marshal(s)
		frame = protowire.AppendTag(frame, telemetryBatchSamplesField, protowire.BytesType)
		frame = protowire.AppendBytes(frame, b)
		if i == 0 { // fields between samples, known and not
			frame = protowire.AppendTag(frame, 2, protowire.VarintType)
			frame = protowire.AppendVarint(frame, 7)
			frame = protowire.AppendTag(frame, 77, protowire.Fixed32Type)
			frame = protowire.AppendFixed32(frame, 1)
		}
	}
	var b pb.TelemetryBatch
	enc, err := DecodeTelemetryBatch(frame, &b)
	if err != nil || len(enc) != 3 || b.GetBatchSeq() != 7 || b.GetNodeId() != "n1" {
		t.Fatalf("decode: %v, %d encodings, %v", err, len(enc), &b)
	}
	for i := range samples {
		var got pb.Telemetry
		if err := proto.Unmarshal(enc[i], &got); err != nil || !proto.Equal(&got, b.Samples[i]) {
			t.Errorf("sample %d: %v %v, want %v", i, &got, err, b.Samples[i])
		}
	}
	if cap(enc[0]) != len(enc[0]) {
		t.Error("an encoding can be appended to over the next field")
	}
	// A samples field of the varint type is an unknown field to the decoder, not a sample: skipped alike.
	odd := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), frame...), telemetryBatchSamplesField, protowire.VarintType), 3)
	if enc, err := DecodeTelemetryBatch(odd, &b); err != nil || len(enc) != 3 || len(b.Samples) != 3 {
		t.Fatalf("varint samples field: %v, %d encodings, %d samples", err, len(enc), len(b.Samples))
	}
	if splitSamples(frame, 2) != nil || splitSamples([]byte{0x1a, 0x7f}, 1) != nil || splitSamples([]byte{0xff}, 0) != nil ||
		splitSamples([]byte{0x0f}, 0) != nil {
		t.Error("split of a frame that does not match")
	}
	if enc, err := DecodeTelemetryBatch(nil, &b); err != nil || enc == nil || len(enc) != 0 {
		t.Errorf("empty frame: %v %v", enc, err)
	}
	for name, bad := range map[string][]byte{"truncated": frame[:len(frame)-3], "tag": {0xff}, "wire type": {0x0f, 1}} {
		if _, err := DecodeTelemetryBatch(bad, &b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestMinerMessagesDue(t *testing.T) {
	mining := &pb.Telemetry{State: pb.MinerState_MINER_STATE_MINING}
	for i, tc := range []struct {
		told bool
		held pb.MinerState
		want bool
	}{
		{false, pb.MinerState_MINER_STATE_MINING, true}, // never told anything
		{true, pb.MinerState_MINER_STATE_MINING, false},
		{true, pb.MinerState_MINER_STATE_STOPPED, true},
	} {
		if got := minerTelemetryDue(tc.told, tc.held, mining); got != tc.want {
			t.Errorf("case %d: %v, want %v", i, got, tc.want)
		}
	}
	if !minerStateDue(0, 1) || !minerStateDue(5, 5) || minerStateDue(5, 4) {
		t.Error("state change against the newest sample")
	}
}

// Samples ingested with the node's encodings are stored as those bytes (a newer node's field survives a
// restart); a sample the cloud changed (no observed time) is stored as changed, and encodings that do not
// match the samples are ignored. Real Badger directory.
func TestIngestStoresEncodedSamples(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(t0)
	f := startFleet(t, st, clk)
	ctx := context.Background()
	devs := []*pb.Device{{MinerId: "m1", NodeId: "n1"}, {MinerId: "m2", NodeId: "n1"}, {MinerId: "m3", NodeId: "n1"}}
	if err := f.RegisterDevices(ctx, devs); err != nil {
		t.Fatal(err)
	}
	extra := protowire.AppendString(protowire.AppendTag(nil, 999, protowire.BytesType), "newer")
	frame := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)
	for _, s := range []*pb.Telemetry{
		{MinerId: "m1", ObservedAtUnixMs: t0.UnixMilli() - 100, Hashrate_5SThs: 1},
		{MinerId: "m2", Hashrate_5SThs: 2}, // no time: stamped with now
	} {
		b, _ := proto.Marshal(s)
		b = append(b, extra...)
		frame = protowire.AppendBytes(protowire.AppendTag(frame, telemetryBatchSamplesField, protowire.BytesType), b)
	}
	var b pb.TelemetryBatch
	enc, err := DecodeTelemetryBatch(frame, &b)
	if err != nil || len(enc) != 2 {
		t.Fatal(err)
	}
	if res, err := f.IngestEncodedTelemetry(ctx, "n1", &b, enc); err != nil || res.Applied != 2 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	// Encodings that do not match the samples: the samples are encoded.
	b2 := &pb.TelemetryBatch{BatchSeq: 2, Samples: []*pb.Telemetry{{MinerId: "m3", ObservedAtUnixMs: t0.UnixMilli(), Hashrate_5SThs: 3}}}
	if res, err := f.IngestEncodedTelemetry(ctx, "n1", b2, [][]byte{[]byte("junk"), nil}); err != nil || res.Applied != 1 {
		t.Fatalf("mismatched encodings: %+v %v", res, err)
	}
	tels, err := st.LatestTelemetry()
	if err != nil || len(tels) != 3 {
		t.Fatalf("latest: %d, %v", len(tels), err)
	}
	got := map[string]*pb.Telemetry{}
	for _, s := range tels {
		got[s.GetMinerId()] = s
	}
	if m1 := got["m1"]; m1.GetHashrate_5SThs() != 1 || string(m1.ProtoReflect().GetUnknown()) != string(extra) {
		t.Errorf("m1 stored as %v (unknown %x)", m1, m1.ProtoReflect().GetUnknown())
	}
	if m2 := got["m2"]; m2.GetObservedAtUnixMs() != t0.UnixMilli() || m2.GetHashrate_5SThs() != 2 {
		t.Errorf("m2 stored as %v, want observed at now", m2)
	}
	if m3 := got["m3"]; m3.GetHashrate_5SThs() != 3 {
		t.Errorf("m3 stored as %v", m3)
	}
	row, err := f.Miner(ctx, "m2")
	if err != nil || row.Telemetry.GetObservedAtUnixMs() != t0.UnixMilli() {
		t.Fatalf("view: %+v %v", row, err)
	}
}
