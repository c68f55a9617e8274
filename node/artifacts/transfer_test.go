package artifacts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/artifacts"
	srvart "github.com/hashfleet/hashfleet/server/artifacts"
	"github.com/hashfleet/hashfleet/server/gateway"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cutProxy forwards TCP to target and, while cuts remain, closes a connection once limit bytes crossed it
// in the watched direction: a dropped stream on a real socket.
type cutProxy struct {
	lis      net.Listener
	target   string
	limit    int64
	upstream bool // watch client→server (uploads) instead of server→client
	cuts     atomic.Int32
	toServer atomic.Int64
	toClient atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newCutProxy(t *testing.T, target string, limit int64, cuts int32, upstream bool) *cutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: lis, target: target, limit: limit, upstream: upstream}
	p.cuts.Store(cuts)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) close() {
	_ = p.lis.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		cut := p.cuts.Add(-1) >= 0
		var moved atomic.Int64
		pipe := func(dst, src net.Conn, watched bool, total *atomic.Int64) {
			defer p.wg.Done()
			buf := make([]byte, 16<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					total.Add(int64(n))
					if watched && cut && moved.Add(int64(n)) > p.limit {
						_ = c.Close()
						_ = s.Close()
						return
					}
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					_ = dst.Close()
					_ = src.Close()
					return
				}
			}
		}
		p.wg.Add(2)
		go pipe(s, c, p.upstream, &p.toServer)
		go pipe(c, s, !p.upstream, &p.toClient)
	}
}

// recorder wraps the service and records the offsets nodes fetch from.
type recorder struct {
	*srvart.Service
	mu      sync.Mutex
	offsets []int64
}

func (r *recorder) Fetch(req *pb.ArtifactFetchRequest, s grpc.ServerStreamingServer[pb.ArtifactChunk]) error {
	r.mu.Lock()
	r.offsets = append(r.offsets, req.GetOffset())
	r.mu.Unlock()
	return r.Service.Fetch(req, s)
}

func (r *recorder) fetchOffsets() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.offsets...)
}

type cloud struct {
	svc  *srvart.Service
	rec  *recorder
	addr string
	dir  string
}

func startCloud(t testing.TB, maxPerNode int) *cloud {
	t.Helper()
	dir := t.TempDir()
	st, err := srvart.OpenStore(dir, 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	cfg := srvart.DefaultConfig()
	cfg.ChunkSize, cfg.MaxPerNode, cfg.Logger = 32<<10, maxPerNode, quiet
	cfg.Authenticate = gateway.TrustNodeMetadata().Authenticate
	svc, err := srvart.NewService(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Service: svc}
	gs := grpc.NewServer()
	pb.RegisterArtifactsServer(gs, rec)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return &cloud{svc: svc, rec: rec, addr: lis.Addr().String(), dir: dir}
}

func newClient(t testing.TB, addr string, tune func(*artifacts.Config)) *artifacts.Client {
	t.Helper()
	cfg := artifacts.DefaultConfig()
	cfg.NodeID, cfg.Dir, cfg.Logger = "node-a", t.TempDir(), quiet
	cfg.Backoff, cfg.MaxBackoff, cfg.ChunkSize, cfg.ReserveBytes = 10*time.Millisecond, 50*time.Millisecond, 32<<10, 0
	cfg.Dial = func(ctx context.Context) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if tune != nil {
		tune(&cfg)
	}
	c, err := artifacts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func blob(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDownloadResumesAfterDroppedStream: the TCP connection is cut twice mid-transfer; the node resumes
// from the bytes it holds (the cloud sees fetches from non-zero offsets), and the file hashes right.
func TestDownloadResumesAfterDroppedStream(t *testing.T) {
	c := startCloud(t, 2)
	data, sha := blob(t, 1<<20)
	if _, err := c.svc.Store().Put(bytes.NewReader(data), sha); err != nil {
		t.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-1", sha, srvart.ToNode)
	px := newCutProxy(t, c.addr, 300<<10, 2, false)
	cl := newClient(t, px.lis.Addr().String(), nil)
	path, err := cl.Download(ctxT(t), "cmd-1", &pb.ArtifactRef{Sha256: sha, Size: int64(len(data))})
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (err %v)", err)
	}
	offs := c.rec.fetchOffsets()
	if len(offs) < 3 || offs[0] != 0 {
		t.Fatalf("fetch offsets %v: want a first fetch from 0 and two resumes", offs)
	}
	for _, o := range offs[1:] {
		if o == 0 {
			t.Fatalf("fetch offsets %v: a resume restarted from 0", offs)
		}
	}
	if moved := px.toClient.Load(); moved > int64(len(data))*3/2 {
		t.Fatalf("%d bytes crossed the link for a %d-byte artifact: not resumed", moved, len(data))
	}
}

// TestUploadResumesAfterDroppedStream: a log bundle upload cut twice resumes from the cloud's committed offset.
func TestUploadResumesAfterDroppedStream(t *testing.T) {
	c := startCloud(t, 2)
	data, sha := blob(t, 1<<20)
	file := filepath.Join(t.TempDir(), "logs.tar.gz")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-logs", "", srvart.FromNode)
	px := newCutProxy(t, c.addr, 400<<10, 2, true)
	cl := newClient(t, px.lis.Addr().String(), nil)
	ref, err := cl.Upload(ctxT(t), "cmd-logs", file, "logs.tar.gz")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if ref.GetSha256() != sha {
		t.Fatalf("ref %v", ref)
	}
	m, ok := c.svc.Uploaded("node-a", "cmd-logs")
	if !ok || m.SHA256 != sha || m.Size != int64(len(data)) {
		t.Fatalf("uploaded %v %v", m, ok)
	}
	f, _, err := c.svc.Store().Open(sha)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	_ = f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("stored bundle differs")
	}
	if moved := px.toServer.Load(); moved > int64(len(data))*3/2 {
		t.Fatalf("%d bytes crossed the link for a %d-byte bundle: not resumed", moved, len(data))
	}
}

// TestDownloadChecksumMismatchRefused: the cloud's blob was altered on disk; the node refuses the bytes and
// keeps nothing.
func TestDownloadChecksumMismatchRefused(t *testing.T) {
	c := startCloud(t, 2)
	data, sha := blob(t, 100<<10)
	if _, err := c.svc.Store().Put(bytes.NewReader(data), sha); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 0xff
	if err := os.WriteFile(filepath.Join(c.dir, "blobs", sha), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-1", sha, srvart.ToNode)
	cl := newClient(t, c.addr, nil)
	_, err := cl.Download(ctxT(t), "cmd-1", &pb.ArtifactRef{Sha256: sha, Size: int64(len(data))})
	if !errors.Is(err, artifacts.ErrChecksum) {
		t.Fatalf("err %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(cl.Path(sha)); !os.IsNotExist(err) {
		t.Fatalf("a refused artifact was kept: %v", err)
	}
	// A size the cloud does not hold is refused too.
	_, err = cl.Download(ctxT(t), "cmd-1", &pb.ArtifactRef{Sha256: sha, Size: int64(len(data)) + 1})
	if !errors.Is(err, artifacts.ErrChecksum) {
		t.Fatalf("wrong size: err %v, want ErrChecksum", err)
	}
}

// TestUploadChecksumMismatchRefused: bytes that do not hash to the sha256 announced are refused by the cloud
// (DataLoss) and never stored.
func TestUploadChecksumMismatchRefused(t *testing.T) {
	c := startCloud(t, 2)
	data, sha := blob(t, 50<<10)
	c.svc.Grant("node-a", "cmd-logs", "", srvart.FromNode)
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx := metadata.AppendToOutgoingContext(ctxT(t), gateway.MetadataNode, "node-a")
	st, err := pb.NewArtifactsClient(conn).Put(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ArtifactPutFrame{Begin: &pb.ArtifactPutBegin{CommandId: "cmd-logs", Sha256: sha, Size: int64(len(data))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	data[0] ^= 1
	_ = st.Send(&pb.ArtifactPutFrame{Offset: 0, Data: data})
	_, err = st.Recv()
	if status.Code(err) != codes.DataLoss {
		t.Fatalf("err %v, want DataLoss (checksum mismatch)", err)
	}
	if _, err := c.svc.Store().Stat(sha); !errors.Is(err, srvart.ErrNotFound) {
		t.Fatalf("mismatching upload stored: %v", err)
	}
	if _, ok := c.svc.Uploaded("node-a", "cmd-logs"); ok {
		t.Fatal("mismatching upload reported done")
	}
}

// TestHostileTransfers: what the cloud or the node refuses, each with a clear error.
func TestHostileTransfers(t *testing.T) {
	c := startCloud(t, 2)
	data, sha := blob(t, 64<<10)
	if _, err := c.svc.Store().Put(bytes.NewReader(data), sha); err != nil {
		t.Fatal(err)
	}
	ref := &pb.ArtifactRef{Sha256: sha, Size: int64(len(data))}
	t.Run("not granted", func(t *testing.T) {
		_, err := newClient(t, c.addr, nil).Download(ctxT(t), "cmd-x", ref)
		if !errors.Is(err, artifacts.ErrRefused) {
			t.Fatalf("err %v, want ErrRefused", err)
		}
	})
	t.Run("granted to another node", func(t *testing.T) {
		c.svc.Grant("node-b", "cmd-b", sha, srvart.ToNode)
		if _, err := newClient(t, c.addr, nil).Download(ctxT(t), "cmd-b", ref); !errors.Is(err, artifacts.ErrRefused) {
			t.Fatalf("err %v, want ErrRefused", err)
		}
	})
	t.Run("no disk space", func(t *testing.T) {
		c.svc.Grant("node-a", "cmd-1", sha, srvart.ToNode)
		before := len(c.rec.fetchOffsets())
		cl := newClient(t, c.addr, func(cfg *artifacts.Config) {
			cfg.FreeSpace = func(string) (uint64, error) { return 10 << 10, nil }
		})
		if _, err := cl.Download(ctxT(t), "cmd-1", ref); !errors.Is(err, artifacts.ErrNoSpace) {
			t.Fatalf("err %v, want ErrNoSpace", err)
		}
		if offs := c.rec.fetchOffsets(); len(offs) != before {
			t.Fatalf("fetched %v despite no space", offs)
		}
	})
	t.Run("too large for the node", func(t *testing.T) {
		cl := newClient(t, c.addr, func(cfg *artifacts.Config) { cfg.MaxSize = 1024 })
		if _, err := cl.Download(ctxT(t), "cmd-1", ref); !errors.Is(err, artifacts.ErrTooLarge) {
			t.Fatalf("err %v, want ErrTooLarge", err)
		}
	})
	t.Run("not a sha256", func(t *testing.T) {
		if _, err := newClient(t, c.addr, nil).Download(ctxT(t), "cmd-1", &pb.ArtifactRef{Sha256: "../../etc/passwd", Size: 1}); !errors.Is(err, artifacts.ErrRefused) {
			t.Fatalf("err %v, want ErrRefused", err)
		}
	})
	t.Run("upload not granted", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "f")
		_ = os.WriteFile(file, data, 0o600)
		if _, err := newClient(t, c.addr, nil).Upload(ctxT(t), "cmd-none", file, "f"); !errors.Is(err, artifacts.ErrRefused) {
			t.Fatalf("err %v, want ErrRefused", err)
		}
	})
	t.Run("upload over the cloud's limit", func(t *testing.T) {
		conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		c.svc.Grant("node-a", "cmd-big", "", srvart.FromNode)
		ctx := metadata.AppendToOutgoingContext(ctxT(t), gateway.MetadataNode, "node-a")
		st, _ := pb.NewArtifactsClient(conn).Put(ctx)
		_ = st.Send(&pb.ArtifactPutFrame{Begin: &pb.ArtifactPutBegin{CommandId: "cmd-big", Sha256: sha, Size: 1 << 40}})
		if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err %v, want InvalidArgument", err)
		}
	})
	t.Run("no node metadata", func(t *testing.T) {
		conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		st, _ := pb.NewArtifactsClient(conn).Fetch(ctxT(t), &pb.ArtifactFetchRequest{CommandId: "cmd-1", Sha256: sha})
		if _, err := st.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("err %v, want Unauthenticated", err)
		}
	})
}

// TestCheckSpace is the disk-space decision.
func TestCheckSpace(t *testing.T) {
	for _, tc := range []struct {
		free                uint64
		size, have, reserve int64
		ok                  bool
	}{
		{1000, 500, 0, 0, true},
		{1000, 500, 0, 500, true},
		{1000, 500, 0, 501, false},
		{100, 500, 450, 0, true}, // only the rest is needed
		{0, 500, 500, 0, true},
		{10, 500, 0, 0, false},
	} {
		err := artifacts.CheckSpace(tc.free, tc.size, tc.have, tc.reserve)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, artifacts.ErrNoSpace)) {
			t.Errorf("CheckSpace(%d, %d, %d, %d) = %v, want ok=%v", tc.free, tc.size, tc.have, tc.reserve, err, tc.ok)
		}
	}
}

// TestConcurrencyBoundPerNode: the node runs at most MaxConcurrent transfers; the cloud refuses more than
// MaxPerNode at once.
func TestConcurrencyBoundPerNode(t *testing.T) {
	c := startCloud(t, 1)
	data, sha := blob(t, 2<<20)
	if _, err := c.svc.Store().Put(bytes.NewReader(data), sha); err != nil {
		t.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-1", sha, srvart.ToNode)
	// Hold one fetch open on the cloud without reading it.
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctxT(t), gateway.MetadataNode, "node-a"))
	st, err := pb.NewArtifactsClient(conn).Fetch(ctx, &pb.ArtifactFetchRequest{CommandId: "cmd-1", Sha256: sha})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	st2, _ := pb.NewArtifactsClient(conn).Fetch(ctx, &pb.ArtifactFetchRequest{CommandId: "cmd-1", Sha256: sha})
	if _, err := st2.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second concurrent fetch: %v, want ResourceExhausted", err)
	}
	cancel()
	// Once the first ended, the node fetches (a busy cloud is retried, not fatal).
	if _, err := newClient(t, c.addr, nil).Download(ctxT(t), "cmd-1", &pb.ArtifactRef{Sha256: sha, Size: int64(len(data))}); err != nil {
		t.Fatalf("download after the slot freed: %v", err)
	}
}
