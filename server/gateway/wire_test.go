package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// recordingFleet records the telemetry batches the gateway hands it, and through which entry.
type recordingFleet struct {
	sys *actor.ActorSystem

	mu      sync.Mutex
	plain   []*pb.TelemetryBatch
	batches []*pb.TelemetryBatch
	encoded [][][]byte
}

func (f *recordingFleet) System() *actor.ActorSystem { return f.sys }
func (f *recordingFleet) NodePID(context.Context, string) (*actor.PID, error) {
	return nil, status.Error(codes.Unimplemented, "no node actors here")
}
func (f *recordingFleet) IngestEvents(context.Context, string, *pb.EventBatch) (grains.IngestResult, error) {
	return grains.IngestResult{}, nil
}
func (f *recordingFleet) IngestTelemetry(_ context.Context, _ string, b *pb.TelemetryBatch) (grains.IngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plain = append(f.plain, b)
	return grains.IngestResult{Applied: len(b.GetSamples())}, nil
}

// encodedFleet also takes the samples' encodings.
type encodedFleet struct{ *recordingFleet }

func (f encodedFleet) IngestEncodedTelemetry(_ context.Context, _ string, b *pb.TelemetryBatch, enc [][]byte) (grains.IngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, b)
	f.encoded = append(f.encoded, enc)
	return grains.IngestResult{Applied: len(b.GetSamples())}, nil
}

// selfSigned is a TLS certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway-test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// serveTLS serves g over gRPC/TLS on loopback with opts and returns a client connection.
func serveTLS(t *testing.T, g *Gateway, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	cert, pool := selfSigned(t)
	gs := grpc.NewServer(append(opts, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))...)
	pb.RegisterGatewayServer(gs, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-done
	})
	return conn
}

func newTestGateway(t *testing.T, fleet Fleet) *Gateway {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Authenticator, cfg.Logger = TrustNodeMetadata(), nopLogger()
	g, err := New(cfg, fleet)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func wireSamples() []*pb.Telemetry {
	return []*pb.Telemetry{
		{MinerId: "m1", ObservedAtUnixMs: 1_700_000_000_000, State: pb.MinerState_MINER_STATE_MINING, Hashrate_5SThs: 110,
			Pools: []*pb.Pool{{Url: "stratum+tcp://pool:3333", Accepted: 7}}, Firmware: "fw"},
		{MinerId: "m2", ObservedAtUnixMs: 1_700_000_000_100, FansRpm: []int32{5400, 5500}},
		{MinerId: "m3"},
	}
}

// sendFrame sends raw frame bytes on a telemetry stream (a node's uplink writes pre-encoded batches the same
// way) and returns the ack or the stream's error.
func sendFrame(t *testing.T, conn *grpc.ClientConn, frame []byte) (*pb.Ack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), MetadataNode, "n1"), 5*time.Second)
	defer cancel()
	st, err := pb.NewGatewayClient(conn).UploadTelemetry(ctx, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&rawFrame{b: frame}); err != nil {
		t.Fatal(err)
	}
	ack := &pb.Ack{}
	err = st.RecvMsg(ack)
	_ = st.CloseSend()
	return ack, err
}

// rawFrame is a message already in wire form; rawCodec writes it unchanged and decodes acks as protobuf.
type rawFrame struct{ b []byte }
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawFrame).b)}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// Over gRPC/TLS with the gateway's server options, a telemetry frame reaches a fleet that keeps encodings
// with each sample's bytes exactly as they were in the frame, unknown fields included; a fleet that does not
// gets the batch alone, as does any fleet when the server decodes with gRPC's own codec.
func TestTelemetryFrameKeepsSampleBytes(t *testing.T) {
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	samples := wireSamples()
	frame, err := proto.Marshal(&pb.TelemetryBatch{NodeId: "n1", BatchSeq: 9, Samples: samples})
	if err != nil {
		t.Fatal(err)
	}
	// A newer node's field in the second sample: kept as the node sent it.
	extra := protowire.AppendTag(nil, 999, protowire.BytesType)
	extra = protowire.AppendString(extra, "from a newer node")
	s2, _ := proto.Marshal(samples[1])
	s2 = append(s2, extra...)
	frame = protowire.AppendTag(frame, 3, protowire.BytesType)
	frame = protowire.AppendBytes(frame, s2)

	fleet := encodedFleet{&recordingFleet{sys: sys}}
	conn := serveTLS(t, newTestGateway(t, fleet), ServerOptions(DefaultConfig())...)
	ack, err := sendFrame(t, conn, frame)
	if err != nil || ack.GetBatchSeq() != 9 || ack.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("ack %v, %v", ack, err)
	}
	fleet.mu.Lock()
	if len(fleet.batches) != 1 || len(fleet.plain) != 0 {
		t.Fatalf("encoded entry %d batches, plain %d", len(fleet.batches), len(fleet.plain))
	}
	b, enc := fleet.batches[0], fleet.encoded[0]
	fleet.mu.Unlock()
	if len(b.GetSamples()) != 4 || len(enc) != 4 {
		t.Fatalf("%d samples, %d encodings", len(b.GetSamples()), len(enc))
	}
	for i, s := range b.GetSamples() {
		var got pb.Telemetry
		if err := proto.Unmarshal(enc[i], &got); err != nil || !proto.Equal(&got, s) {
			t.Errorf("sample %d: encoding decodes to %v (%v), batch has %v", i, &got, err, s)
		}
	}
	if string(enc[3]) != string(s2) || len(b.GetSamples()[3].ProtoReflect().GetUnknown()) == 0 {
		t.Errorf("newer node's field not kept: %x", enc[3])
	}

	plain := &recordingFleet{sys: sys}
	conn = serveTLS(t, newTestGateway(t, plain), ServerOptions(DefaultConfig())...)
	if ack, err := sendFrame(t, conn, frame); err != nil || ack.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("plain fleet: ack %v, %v", ack, err)
	}
	fleet2 := encodedFleet{&recordingFleet{sys: sys}}
	conn = serveTLS(t, newTestGateway(t, fleet2)) // gRPC's own codec: no encodings
	if ack, err := sendFrame(t, conn, frame); err != nil || ack.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("default codec: ack %v, %v", ack, err)
	}
	plain.mu.Lock()
	fleet2.mu.Lock()
	defer plain.mu.Unlock()
	defer fleet2.mu.Unlock()
	if len(plain.plain) != 1 || len(plain.plain[0].GetSamples()) != 4 || len(fleet2.plain) != 1 || len(fleet2.batches) != 0 {
		t.Fatalf("plain fleet %d batches; default codec: plain %d, encoded %d", len(plain.plain), len(fleet2.plain), len(fleet2.batches))
	}
}

// A frame that is not a TelemetryBatch ends the stream and reaches no fleet, with the same error whether the
// server keeps the samples' bytes or decodes with gRPC's own codec.
func TestMalformedTelemetryFrameRefused(t *testing.T) {
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	good, _ := proto.Marshal(&pb.TelemetryBatch{NodeId: "n1", BatchSeq: 1, Samples: wireSamples()})
	bad := protowire.AppendTag(nil, 3, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0x0a, 0x05, 'm'}) // a sample whose miner_id runs past its end
	frames := map[string][]byte{
		"truncated":      good[:len(good)-3],
		"bad sample":     bad,
		"invalid utf-8":  protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff\xfe"),
		"truncated tag":  {0xff},
		"bad wire type":  {0x0f, 0x01},
		"length too big": {0x1a, 0x7f, 0x01},
	}
	for _, opts := range [][]grpc.ServerOption{ServerOptions(DefaultConfig()), nil} {
		fleet := encodedFleet{&recordingFleet{sys: sys}}
		conn := serveTLS(t, newTestGateway(t, fleet), opts...)
		for name, frame := range frames {
			_, err := sendFrame(t, conn, frame)
			if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "failed to unmarshal") {
				t.Errorf("%s (gateway codec %v): %v, want Internal: failed to unmarshal", name, opts != nil, err)
			}
		}
		fleet.mu.Lock()
		if n := len(fleet.batches) + len(fleet.plain); n != 0 {
			t.Errorf("malformed frames reached the fleet: %d", n)
		}
		fleet.mu.Unlock()
	}
}
