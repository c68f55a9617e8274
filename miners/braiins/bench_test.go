package braiins_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/braiins"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
	bossim "github.com/hashfleet/hashfleet/miners/sim/braiins"
)

// BenchmarkParseErrorsReply is the gRPC reply parse of GetErrors with ten records.
func BenchmarkParseErrorsReply(b *testing.B) {
	rep := &bospb.GetErrorsResponse{}
	for i := range 10 {
		rep.Errors = append(rep.Errors, &bospb.MinerError{TimestampS: 1764331200 + int64(i), Message: "chip temperature too high", Component: "hashboard 2"})
	}
	raw, err := proto.Marshal(rep)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var out bospb.GetErrorsResponse
		if err := proto.Unmarshal(raw, &out); err != nil || len(out.Errors) != 10 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/reply")
}

// BenchmarkPollAndCommand is one poll (cgminer API) and one authenticated gRPC read over loopback.
func BenchmarkPollAndCommand(b *testing.B) {
	f, err := bossim.Start(bossim.Config{Count: 1, Clock: clock.NewFake(time.Now())})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	d, err := braiins.New(f.Devices()[0], braiins.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	b.Run("poll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Poll(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
	})
	b.Run("get_errors", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Execute(ctx, &pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
