package bootstrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// The ingest journal (`hashfleet server --debug-ingest-log FILE`): one JSON line for every telemetry or event
// batch the gateway receives and every ack it sends, written at the gRPC boundary before the ack leaves, so
// the file is a witness of what the cloud took responsibility for. The cloud keeps only the newest sample per
// miner, so this is how a test (cmd/hashfleet's kill -9 tests) checks that every spooled sample arrived
// exactly once and in order. Tests and benchmarks only: it grows without bound.
//
//	{"at":"…","stream":"telemetry","t":"batch","node":"n…","seq":1042,"samples":[["sim-0",1764324000123],…]}
//	{"at":"…","stream":"events","t":"batch","node":"n…","seq":77,"events":[["EVENT_KIND_COMMAND_AUDIT","…id"],…]}
//	{"at":"…","stream":"telemetry","t":"ack","seq":1042,"code":"RESULT_CODE_SUCCEEDED","duplicate":false}

// IngestJournalLine is one line of the ingest journal.
type IngestJournalLine struct {
	At     time.Time `json:"at"`
	Stream string    `json:"stream"` // telemetry or events
	T      string    `json:"t"`      // batch or ack
	Node   string    `json:"node,omitempty"`
	Seq    uint64    `json:"seq"`
	// Samples are [miner id, observed_at ms] of a telemetry batch; Events [kind, event id] of an event batch.
	Samples [][2]any `json:"samples,omitempty"`
	Events  [][2]any `json:"events,omitempty"`
	// Code and Duplicate describe an ack: Duplicate when the cloud had applied that batch_seq before.
	Code      string `json:"code,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Message   string `json:"message,omitempty"`
}

type ingestJournal struct {
	mu sync.Mutex
	f  *os.File
}

// openIngestJournal opens (appending) the journal file.
func openIngestJournal(path string) (*ingestJournal, error) {
	f, err := os.OpenFile(filepath.Clean(path), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--debug-ingest-log: %w", err)
	}
	return &ingestJournal{f: f}, nil
}

// write appends one line with one write call, so a killed server leaves whole lines.
func (j *ingestJournal) write(l IngestJournalLine) {
	b, err := json.Marshal(l)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.f.Write(append(b, '\n'))
}

func (j *ingestJournal) Close() error { return j.f.Close() }

// interceptor journals the upload streams' frames.
func (j *ingestJournal) interceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		stream := ""
		switch {
		case strings.HasSuffix(info.FullMethod, "/UploadTelemetry"):
			stream = "telemetry"
		case strings.HasSuffix(info.FullMethod, "/UploadEvents"):
			stream = "events"
		default:
			return handler(srv, ss)
		}
		return handler(srv, &journaledStream{ServerStream: ss, j: j, stream: stream})
	}
}

type journaledStream struct {
	grpc.ServerStream
	j      *ingestJournal
	stream string
}

func (s *journaledStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err != nil {
		return err
	}
	l := IngestJournalLine{At: time.Now().UTC(), Stream: s.stream, T: "batch"}
	if pm, ok := m.(proto.Message); ok {
		m = pm.ProtoReflect().Interface() // the batch itself when the gateway receives into a wrapper
	}
	switch b := m.(type) {
	case *pb.TelemetryBatch:
		l.Node, l.Seq = b.GetNodeId(), b.GetBatchSeq()
		l.Samples = make([][2]any, 0, len(b.GetSamples()))
		for _, x := range b.GetSamples() {
			l.Samples = append(l.Samples, [2]any{x.GetMinerId(), x.GetObservedAtUnixMs()})
		}
	case *pb.EventBatch:
		l.Node, l.Seq = b.GetNodeId(), b.GetBatchSeq()
		l.Events = make([][2]any, 0, len(b.GetEvents()))
		for _, e := range b.GetEvents() {
			l.Events = append(l.Events, [2]any{e.GetKind().String(), e.GetEventId()})
		}
	default:
		return nil
	}
	s.j.write(l)
	return nil
}

// SendMsg journals an ack before it leaves: every ack a node can have seen is in the journal.
func (s *journaledStream) SendMsg(m any) error {
	if a, ok := m.(*pb.Ack); ok {
		s.j.write(IngestJournalLine{At: time.Now().UTC(), Stream: s.stream, T: "ack", Seq: a.GetBatchSeq(), Code: a.GetCode().String(),
			Duplicate: strings.HasPrefix(a.GetMessage(), "duplicate"), Message: a.GetMessage()})
	}
	return s.ServerStream.SendMsg(m)
}
