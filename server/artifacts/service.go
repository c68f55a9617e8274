package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Direction says which way a granted artifact moves.
type Direction int

const (
	// ToNode: the node may Fetch the artifact (firmware).
	ToNode Direction = iota + 1
	// FromNode: the node may Put an artifact for the command (log bundle).
	FromNode
)

type grantKey struct {
	node, command string
	dir           Direction
}

// Service is pb.ArtifactsServer. A node fetches or puts only what a command issued to it names: the
// command path calls Grant when it issues one.
type Service struct {
	pb.UnimplementedArtifactsServer
	cfg   Config
	store *Store
	log   *slog.Logger

	mu     sync.Mutex
	grants map[grantKey]string // → sha256 ("" for a put whose content is not known in advance)
	active map[string]int      // node → transfers running
	done   map[grantKey]Meta   // finished puts
}

var _ pb.ArtifactsServer = (*Service)(nil)

// NewService returns the service over store.
func NewService(cfg Config, store *Store) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("artifacts: store is required")
	}
	return &Service{cfg: cfg, store: store, log: cfg.Logger, grants: map[grantKey]string{}, active: map[string]int{},
		done: map[grantKey]Meta{}}, nil
}

// Store is the service's blob store.
func (s *Service) Store() *Store { return s.store }

// Grant lets node move the artifact sha for command in direction d. For FromNode sha may be "" (the node
// names the hash in its first frame).
func (s *Service) Grant(node, command, sha string, d Direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[grantKey{node, command, d}] = sha
}

// Revoke removes a grant (the command finished or expired).
func (s *Service) Revoke(node, command string, d Direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, grantKey{node, command, d})
}

// Uploaded returns what node put for command, once complete.
func (s *Service) Uploaded(node, command string) (Meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.done[grantKey{node, command, FromNode}]
	return m, ok
}

func (s *Service) granted(node, command, sha string, d Direction) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[grantKey{node, command, d}]
	return ok && (g == "" || g == sha)
}

func (s *Service) acquire(node string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[node] >= s.cfg.MaxPerNode {
		return status.Errorf(codes.ResourceExhausted, "%v (%d)", ErrBusy, s.cfg.MaxPerNode)
	}
	s.active[node]++
	return nil
}

func (s *Service) release(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[node]--; s.active[node] <= 0 {
		delete(s.active, node)
	}
}

func (s *Service) auth(ctx context.Context) (string, error) {
	node, err := s.cfg.Authenticate(ctx)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return "", err
		}
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return node, nil
}

// Fetch streams an artifact granted to the node from the requested offset.
func (s *Service) Fetch(req *pb.ArtifactFetchRequest, stream grpc.ServerStreamingServer[pb.ArtifactChunk]) error {
	node, err := s.auth(stream.Context())
	if err != nil {
		return err
	}
	sha := req.GetSha256()
	if err := ValidSHA(sha); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if !s.granted(node, req.GetCommandId(), sha, ToNode) {
		var why error = ErrNotGranted
		if s.cfg.CommandNames != nil {
			why = s.cfg.CommandNames(stream.Context(), node, req.GetCommandId(), sha)
		}
		if why != nil {
			s.log.Warn("artifact fetch refused", slog.String("node", node), slog.String("command", req.GetCommandId()),
				slog.String("sha256", sha), slog.Any("err", why))
			return status.Errorf(codes.PermissionDenied, "command %q: %v", req.GetCommandId(), why)
		}
	}
	if err := s.acquire(node); err != nil {
		return err
	}
	defer s.release(node)
	f, m, err := s.store.Open(sha)
	if errors.Is(err, ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer func() { _ = f.Close() }()
	off := req.GetOffset()
	if off < 0 || off > m.Size {
		return status.Errorf(codes.OutOfRange, "offset %d outside the artifact's %d bytes", off, m.Size)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return status.Errorf(codes.Internal, "seek: %v", err)
	}
	buf := make([]byte, s.cfg.ChunkSize)
	for off < m.Size {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), m.Size-off)])
		if err != nil {
			return status.Errorf(codes.Internal, "read %s at %d: %v", sha, off, err)
		}
		if err := stream.Send(&pb.ArtifactChunk{Offset: off, Data: buf[:n], TotalSize: m.Size}); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// Put receives an artifact the node was asked for, resuming a partial upload of the same (node, command,
// sha). It acks the committed offset after every chunk; a chunk not at the committed offset is refused.
func (s *Service) Put(stream grpc.BidiStreamingServer[pb.ArtifactPutFrame, pb.ArtifactPutAck]) error {
	node, err := s.auth(stream.Context())
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	b := first.GetBegin()
	if b == nil {
		return status.Error(codes.InvalidArgument, "the first frame must be begin")
	}
	if err := ValidSHA(b.GetSha256()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if b.GetSize() < 0 || b.GetSize() > s.store.MaxSize() {
		return status.Errorf(codes.InvalidArgument, "%v: %d bytes, the limit is %d", ErrTooLarge, b.GetSize(), s.store.MaxSize())
	}
	if !s.granted(node, b.GetCommandId(), b.GetSha256(), FromNode) {
		var why error = ErrNotGranted
		if s.cfg.CommandAsks != nil {
			why = s.cfg.CommandAsks(stream.Context(), node, b.GetCommandId())
		}
		if why != nil {
			s.log.Warn("artifact put refused", slog.String("node", node), slog.String("command", b.GetCommandId()), slog.Any("err", why))
			return status.Errorf(codes.PermissionDenied, "command %q: %v", b.GetCommandId(), why)
		}
	}
	if err := s.acquire(node); err != nil {
		return err
	}
	defer s.release(node)
	path := s.store.partialPath(node, b.GetCommandId(), b.GetSha256())
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return status.Errorf(codes.Internal, "open upload: %v", err)
	}
	defer func() { _ = f.Close() }()
	committed, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return status.Errorf(codes.Internal, "seek upload: %v", err)
	}
	if committed > b.GetSize() { // a stale partial of another size: start over
		if err := f.Truncate(0); err != nil {
			return status.Errorf(codes.Internal, "truncate upload: %v", err)
		}
		committed, _ = f.Seek(0, io.SeekStart)
	}
	if err := stream.Send(&pb.ArtifactPutAck{Committed: committed}); err != nil {
		return err
	}
	for committed < b.GetSize() {
		fr, err := stream.Recv()
		if err != nil {
			return err
		}
		if fr.GetOffset() != committed {
			return status.Errorf(codes.FailedPrecondition, "chunk at offset %d, the cloud holds %d bytes", fr.GetOffset(), committed)
		}
		if committed+int64(len(fr.GetData())) > b.GetSize() {
			return status.Errorf(codes.InvalidArgument, "chunk runs past the announced %d bytes", b.GetSize())
		}
		if _, err := f.Write(fr.GetData()); err != nil {
			return status.Errorf(codes.Internal, "write upload: %v", err)
		}
		if err := f.Sync(); err != nil {
			return status.Errorf(codes.Internal, "sync upload: %v", err)
		}
		committed += int64(len(fr.GetData()))
		if committed < b.GetSize() {
			if err := stream.Send(&pb.ArtifactPutAck{Committed: committed}); err != nil {
				return err
			}
		}
	}
	_ = f.Close()
	if err := s.store.commitPartial(path, b.GetSha256()); err != nil {
		s.log.Warn("artifact put refused", slog.String("node", node), slog.String("command", b.GetCommandId()), slog.Any("err", err))
		if errors.Is(err, ErrChecksum) {
			return status.Error(codes.DataLoss, err.Error())
		}
		return status.Error(codes.Internal, err.Error())
	}
	m := Meta{SHA256: b.GetSha256(), Size: b.GetSize()}
	s.mu.Lock()
	s.done[grantKey{node, b.GetCommandId(), FromNode}] = m
	s.mu.Unlock()
	return stream.Send(&pb.ArtifactPutAck{Committed: committed, Done: true, Message: fmt.Sprintf("stored %s", m.SHA256)})
}
