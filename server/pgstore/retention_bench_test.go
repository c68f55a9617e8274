package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

func openB(b *testing.B, dsn string) *pgstore.Store {
	b.Helper()
	s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkLateHistoryPartition: creating a day's partition after 100,000 of its samples already landed in
// the default partition (writes to the history wait meanwhile). One op = one partition created with its rows
// moved.
func BenchmarkLateHistoryPartition(b *testing.B) {
	pg := testsvc.SharedPostgres(b)
	s := openB(b, pg.NewDatabase(b))
	const rows = 100_000
	day := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := day.AddDate(0, 0, i)
		samples := make([]*pb.Telemetry, rows)
		for j := range samples {
			samples[j] = &pb.Telemetry{MinerId: fmt.Sprintf("m%04d", j%2000), ObservedAtUnixMs: d.Add(time.Duration(j) * 800 * time.Millisecond).UnixMilli(),
				Hashrate_5SThs: 110}
		}
		if err := s.AppendHistory("n1", samples); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		created, err := s.CreateHistoryPartitions(d, d)
		if err != nil || len(created) != 1 {
			b.Fatalf("created %v, %v", created, err)
		}
	}
	b.ReportMetric(rows, "rows_moved/op")
}

// BenchmarkPutPair: declaring a pair of 50 devices (record and claims in one transaction).
func BenchmarkPutPair(b *testing.B) {
	pg := testsvc.SharedPostgres(b)
	s := openB(b, pg.NewDatabase(b))
	for i := 0; i < b.N; i++ {
		devs := make([]string, 50)
		for j := range devs {
			devs[j] = fmt.Sprintf("m-%d-%d", i, j)
		}
		id := fmt.Sprintf("p%d", i)
		if err := s.PutPair(&store.PairRecord{ID: id, Members: [2]string{id + "a", id + "b"}, Devices: devs}); err != nil {
			b.Fatal(err)
		}
	}
}
