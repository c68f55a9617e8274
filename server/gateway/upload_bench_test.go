package gateway

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// countingListener counts the writes the server makes on its accepted connections (each is one TLS record
// write, one syscall).
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// benchSamples is a batch of n samples shaped like a simulated Antminer's (≈470 bytes each as protobuf).
func benchSamples(n int) []*pb.Telemetry {
	out := make([]*pb.Telemetry, n)
	for i := range out {
		id := fmt.Sprintf("node-01-miner-%05d", i)
		out[i] = &pb.Telemetry{MinerId: id, ObservedAtUnixMs: 1_800_000_000_000, State: pb.MinerState_MINER_STATE_MINING,
			Hashrate_5SThs: 110, HashrateAvgThs: 110.2,
			Boards: []*pb.Board{{Index: 0, TempC: 64, ChipTempC: 79, HashrateThs: 36.7, Chips: 76},
				{Index: 1, TempC: 65, ChipTempC: 80, HashrateThs: 36.6, Chips: 76},
				{Index: 2, TempC: 63, ChipTempC: 78, HashrateThs: 36.9, Chips: 76}},
			FansRpm: []int32{5400, 5460, 5520, 5380}, PowerW: 3250, EfficiencyJth: 29.5,
			Pools: []*pb.Pool{
				{Url: "stratum+tcp://btc.pool.example.com:3333", User: "fleet.worker" + id[len(id)-5:], Status: "Alive", Accepted: 18_250, Rejected: 12, Active: true},
				{Url: "stratum+tcp://btc-backup.pool.example.com:3333", User: "fleet.worker", Priority: 1, Status: "Alive"},
				{Url: "stratum+tcp://solo.example.org:3333", User: "fleet", Priority: 2, Status: "Dead"}},
			UptimeS: 86_400, Firmware: "Antminer-S19-Pro-20230510", Model: "Antminer S19 Pro",
			Serial: fmt.Sprintf("SN%08d", i), Mac: "02:00:00:00:00:01", WorkMode: "normal", PollLatencyUs: 4_200}
	}
	return out
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUploadTelemetry is one node's telemetry stream through the gateway over real gRPC/TLS on loopback
// with the gateway's server options: frames of 100 samples (≈47 KB, a 1,000-miner site at the node's 500 ms
// flush), each acked before the next is sent, into a fleet that applies nothing. It reports the process's
// CPU per batch (both ends: the node's client and the gateway) and the gateway's socket writes per batch
// (acks, and HTTP/2 flow-control frames: WINDOW_UPDATE, BDP pings). every=50ms paces the frames as ten
// such nodes would arrive at a cloud, with the process idle in between.
// client=fixed-window gives the client fixed windows too (grpc.WithInitialWindowSize): without them the
// client's BDP estimation pings the gateway as acks arrive, and each ping costs the gateway a write.
func BenchmarkUploadTelemetry(b *testing.B) {
	for _, pace := range []time.Duration{0, 50 * time.Millisecond} {
		for _, fixed := range []bool{false, true} {
			client := "default"
			if fixed {
				client = "fixed-window"
			}
			b.Run(fmt.Sprintf("batch=100/every=%s/client=%s", pace, client), func(b *testing.B) { benchUpload(b, 100, pace, fixed) })
		}
	}
}

func benchUpload(b *testing.B, n int, pace time.Duration, fixedClientWindow bool) {
	sys := actors.NewSystem(nopLogger())
	defer sys.Shutdown()
	cfg := DefaultConfig()
	cfg.Authenticator, cfg.Logger = TrustNodeMetadata(), nopLogger()
	g, err := New(cfg, countFleet{&recordingFleet{sys: sys}})
	if err != nil {
		b.Fatal(err)
	}
	cert, pool := selfSigned(b)
	gs := grpc.NewServer(append(ServerOptions(cfg), grpc.Creds(credentials.NewServerTLSFromCert(&cert)))...)
	pb.RegisterGatewayServer(gs, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var writes atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(countingListener{Listener: lis, writes: &writes})
	}()
	defer func() {
		gs.Stop()
		<-done
	}()
	dial := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "127.0.0.1"))}
	if fixedClientWindow {
		dial = append(dial, grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(2<<20))
	}
	conn, err := grpc.NewClient(lis.Addr().String(), dial...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), MetadataNode, "n1"))
	defer cancel()
	st, err := pb.NewGatewayClient(conn).UploadTelemetry(ctx, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		b.Fatal(err)
	}
	tb := &pb.TelemetryBatch{NodeId: "n1", Samples: benchSamples(n)}
	seq := uint64(0)
	send := func() {
		seq++
		tb.BatchSeq = seq
		frame, err := proto.Marshal(tb)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.SendMsg(&rawFrame{b: frame}); err != nil {
			b.Fatal(err)
		}
		ack := &pb.Ack{}
		if err := st.RecvMsg(ack); err != nil || ack.GetBatchSeq() != seq {
			b.Fatalf("ack %v, %v", ack, err)
		}
	}
	for range 50 { // the connection's windows settle
		send()
	}
	w0, cpu0 := writes.Load(), processCPU()
	b.ResetTimer()
	due := time.Now()
	for b.Loop() {
		if pace > 0 {
			due = due.Add(pace)
			time.Sleep(time.Until(due))
		}
		send()
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/batch")
	b.ReportMetric(float64(writes.Load()-w0)/float64(b.N), "writes/batch")
	_ = st.CloseSend()
}

// countFleet applies every batch and keeps nothing.
type countFleet struct{ *recordingFleet }

func (f countFleet) IngestEncodedTelemetry(_ context.Context, _ string, b *pb.TelemetryBatch, _ [][]byte) (grains.IngestResult, error) {
	return grains.IngestResult{Applied: len(b.GetSamples())}, nil
}
