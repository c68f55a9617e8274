package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Client moves artifacts between this node and the cloud. It is safe for concurrent use; at most
// MaxConcurrent transfers run at once, the others wait their turn (or their ctx).
type Client struct {
	cfg Config
	log *slog.Logger
	sem chan struct{}

	mu    sync.Mutex
	files map[string]chan struct{} // sha → held while one download of it runs (others wait, then reuse it)
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := DefaultConfig()
	if cfg.CacheAge == 0 {
		cfg.CacheAge = d.CacheAge // never "remove every download at once"
	}
	if cfg.PartialAge == 0 {
		cfg.PartialAge = d.PartialAge
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "partial"), 0o700); err != nil {
		return nil, fmt.Errorf("artifacts: create %s: %w", cfg.Dir, err)
	}
	c := &Client{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.MaxConcurrent), files: map[string]chan struct{}{}}
	c.sweepCache()
	return c, nil
}

func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("artifacts: waiting for a transfer slot: %w", ctx.Err())
	}
}

func (c *Client) release() { <-c.sem }

// fileLock is sha's download lock: a channel of one slot, held while a download (or a sweep) works on it.
func (c *Client) fileLock(sha string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.files[sha]
	if !ok {
		l = make(chan struct{}, 1)
		c.files[sha] = l
	}
	return l
}

// lockFile serializes downloads of one sha: the miners of a firmware update share one fetch.
func (c *Client) lockFile(ctx context.Context, sha string) (func(), error) {
	l := c.fileLock(sha)
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("artifacts: waiting for another download of %s: %w", sha, ctx.Err())
	}
}

// Path is where a completed download of sha lives.
func (c *Client) Path(sha string) string { return filepath.Join(c.cfg.Dir, sha) }

func (c *Client) partialPath(sha string) string { return filepath.Join(c.cfg.Dir, "partial", sha) }

// CheckSpace refuses (ErrNoSpace) a download of size bytes, of which have are already on disk, when the
// filesystem would keep less than ReserveBytes free.
func CheckSpace(free uint64, size, have, reserve int64) error {
	need := size - have + reserve
	if need > 0 && uint64(need) > free {
		return fmt.Errorf("%w: need %d bytes (%d left to fetch + %d reserve), %d free", ErrNoSpace, need, size-have, reserve, free)
	}
	return nil
}

// session dials and authorizes a connection and returns it with the outgoing metadata context.
func (c *Client) session(ctx context.Context) (*grpc.ClientConn, context.Context, error) {
	conn, err := c.cfg.Dial(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	md := metadata.Pairs("x-hashfleet-node", c.cfg.NodeID)
	if c.cfg.Authorize != nil {
		tok, err := c.cfg.Authorize(ctx, conn)
		if err != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("session: %w", err)
		}
		md.Append("authorization", "Bearer "+tok)
	}
	return conn, metadata.NewOutgoingContext(ctx, md), nil
}

// permanent says a gRPC error will not go away by retrying.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.PermissionDenied, codes.NotFound, codes.InvalidArgument, codes.OutOfRange, codes.Unauthenticated,
		codes.DataLoss, codes.FailedPrecondition:
		return true
	}
	return false
}

// retry runs attempt until it succeeds, fails permanently, ctx ends, or Retries resumes failed. progress
// reports whether the last attempt moved bytes: a transfer that advances resets the backoff.
func (c *Client) retry(ctx context.Context, what string, attempt func(ctx context.Context) (progressed bool, err error)) error {
	wait := c.cfg.Backoff
	for failures := 0; ; {
		progressed, err := attempt(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrChecksum) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrRefused) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if progressed {
			failures, wait = 0, c.cfg.Backoff
		}
		if failures++; failures > c.cfg.Retries {
			return fmt.Errorf("%s: %w: %w", what, ErrGaveUp, err)
		}
		c.log.Info("artifact transfer interrupted, resuming", slog.String("transfer", what), slog.Duration("after", wait), slog.Any("err", err))
		t := c.cfg.Clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// Download fetches the artifact ref names for command into Path(sha), resuming a partial download, and
// returns the path. A download whose bytes do not hash to ref's sha256 is deleted and refused (ErrChecksum).
func (c *Client) Download(ctx context.Context, command string, ref *pb.ArtifactRef) (string, error) {
	sha, size := ref.GetSha256(), ref.GetSize()
	if len(sha) != 64 {
		return "", fmt.Errorf("%w: %q is not a sha256", ErrRefused, sha)
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return "", fmt.Errorf("%w: %q is not a sha256", ErrRefused, sha)
	}
	if size < 0 || size > c.cfg.MaxSize {
		return "", fmt.Errorf("%w: %d bytes, the node's limit is %d", ErrTooLarge, size, c.cfg.MaxSize)
	}
	c.sweepCache()
	unlock, err := c.lockFile(ctx, sha)
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(c.Path(sha)); err == nil && fi.Size() == size {
		c.markUsed(sha)
		return c.Path(sha), nil
	}
	if err := c.acquire(ctx); err != nil {
		return "", err
	}
	defer c.release()
	part := c.partialPath(sha)
	have := int64(0)
	if fi, err := os.Stat(part); err == nil {
		have = fi.Size()
	}
	if have > size {
		_ = os.Remove(part)
		have = 0
	}
	free, err := c.cfg.FreeSpace(c.cfg.Dir)
	if err != nil {
		return "", fmt.Errorf("artifacts: free space: %w", err)
	}
	if err := CheckSpace(free, size, have, c.cfg.ReserveBytes); err != nil {
		return "", fmt.Errorf("download %s for command %s: %w", sha, command, err)
	}
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("artifacts: open %s: %w", part, err)
	}
	defer func() { _ = f.Close() }()
	what := "download " + sha
	err = c.retry(ctx, what, func(ctx context.Context) (bool, error) { return c.fetchOnce(ctx, f, command, sha, size) })
	if err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("artifacts: close %s: %w", part, err)
	}
	if err := verify(part, sha); err != nil {
		_ = os.Remove(part)
		return "", fmt.Errorf("download %s for command %s: %w", sha, command, err)
	}
	if err := os.Rename(part, c.Path(sha)); err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	c.markUsed(sha)
	return c.Path(sha), nil
}

// fetchOnce appends to f from its current size until size bytes are held or the stream fails.
func (c *Client) fetchOnce(ctx context.Context, f *os.File, command, sha string, size int64) (bool, error) {
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("artifacts: seek: %w", err)
	}
	if have == size {
		return false, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, sctx, err := c.session(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()
	stream, err := pb.NewArtifactsClient(conn).Fetch(sctx, &pb.ArtifactFetchRequest{CommandId: command, Sha256: sha, Offset: have})
	if err != nil {
		return false, fmt.Errorf("fetch: %w", err)
	}
	start := have
	for have < size {
		ch, err := stream.Recv()
		if err == io.EOF {
			return have > start, fmt.Errorf("%w: the cloud ended the stream at %d of %d bytes", ErrChecksum, have, size)
		}
		if err != nil {
			if permanent(err) {
				return have > start, fmt.Errorf("%w: %w", ErrRefused, err)
			}
			return have > start, fmt.Errorf("fetch at %d: %w", have, err)
		}
		switch {
		case ch.GetTotalSize() != size:
			return have > start, fmt.Errorf("%w: the cloud holds %d bytes, the command names %d", ErrChecksum, ch.GetTotalSize(), size)
		case ch.GetOffset() != have:
			return have > start, fmt.Errorf("fetch: chunk at %d, expected %d", ch.GetOffset(), have)
		case have+int64(len(ch.GetData())) > size:
			return have > start, fmt.Errorf("%w: chunk runs past %d bytes", ErrChecksum, size)
		}
		if _, err := f.Write(ch.GetData()); err != nil {
			return have > start, fmt.Errorf("artifacts: write: %w", err)
		}
		have += int64(len(ch.GetData()))
	}
	return true, f.Sync()
}

func verify(path, want string) error {
	got, _, err := hashFile(path)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: got %s, want %s", ErrChecksum, got, want)
	}
	return nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("artifacts: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("artifacts: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Upload puts the file at path to the cloud for command, resuming from what the cloud already holds after a
// dropped stream, and returns its sha256 reference.
func (c *Client) Upload(ctx context.Context, command, path, name string) (*pb.ArtifactRef, error) {
	sha, size, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	if size > c.cfg.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the node's limit is %d", ErrTooLarge, size, c.cfg.MaxSize)
	}
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	defer func() { _ = f.Close() }()
	ref := &pb.ArtifactRef{Sha256: sha, Size: size, Name: name}
	err = c.retry(ctx, "upload "+sha, func(ctx context.Context) (bool, error) { return c.putOnce(ctx, f, command, ref) })
	if err != nil {
		return nil, err
	}
	return ref, nil
}

func (c *Client) putOnce(ctx context.Context, f *os.File, command string, ref *pb.ArtifactRef) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, sctx, err := c.session(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()
	stream, err := pb.NewArtifactsClient(conn).Put(sctx)
	if err != nil {
		return false, fmt.Errorf("put: %w", err)
	}
	if err := stream.Send(&pb.ArtifactPutFrame{Begin: &pb.ArtifactPutBegin{CommandId: command, Sha256: ref.GetSha256(),
		Size: ref.GetSize(), Name: ref.GetName()}}); err != nil {
		return false, c.putError(stream, err)
	}
	ack, err := stream.Recv()
	if err != nil {
		return false, c.putError(stream, err)
	}
	start := ack.GetCommitted()
	if ack.GetDone() {
		return true, nil
	}
	if start < 0 || start > ref.GetSize() {
		return false, fmt.Errorf("%w: the cloud holds %d of %d bytes", ErrRefused, start, ref.GetSize())
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return false, fmt.Errorf("artifacts: seek: %w", err)
	}
	committed := start
	buf := make([]byte, c.cfg.ChunkSize)
	for off := start; ; {
		if off < ref.GetSize() {
			n, err := io.ReadFull(f, buf[:min(int64(len(buf)), ref.GetSize()-off)])
			if err != nil {
				return committed > start, fmt.Errorf("artifacts: read: %w", err)
			}
			if err := stream.Send(&pb.ArtifactPutFrame{Offset: off, Data: buf[:n]}); err != nil {
				return committed > start, c.putError(stream, err)
			}
			off += int64(n)
		}
		ack, err := stream.Recv()
		if err != nil {
			return committed > start, c.putError(stream, err)
		}
		committed = ack.GetCommitted()
		if ack.GetDone() {
			_ = stream.CloseSend()
			return true, nil
		}
	}
}

// putError turns a failed Send or Recv into the stream's status (Send reports io.EOF once the server ended).
func (c *Client) putError(stream grpc.BidiStreamingClient[pb.ArtifactPutFrame, pb.ArtifactPutAck], err error) error {
	if err == io.EOF {
		if _, rerr := stream.Recv(); rerr != nil && rerr != io.EOF {
			err = rerr
		}
	}
	if status.Code(err) == codes.DataLoss {
		return fmt.Errorf("%w: %w", ErrChecksum, err)
	}
	if permanent(err) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return fmt.Errorf("put: %w", err)
}
