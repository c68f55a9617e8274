package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the node persists. Implementations are safe for concurrent use.
type Store interface {
	// SeqMark returns the command high-water mark (0 before the first command).
	SeqMark() (uint64, error)
	// CommitCommand moves the high-water mark to rec.MonotonicSeq, records rec as the command executed at that
	// seq and appends it to the audit log, in one synced transaction. It fails with ErrSeqNotAbove when the
	// seq is not above the current mark.
	CommitCommand(rec *pb.AuditRecord) error
	// AppendAudit appends a record (a refusal) to the audit log without touching the mark.
	AppendAudit(rec *pb.AuditRecord) error
	// Audit returns up to limit audit records in order, starting after the first skip.
	Audit(skip, limit int) ([]*pb.AuditRecord, error)
	// Command returns the accepted command record at seq; ErrNotFound when none.
	Command(seq uint64) (*pb.AuditRecord, error)
	// PutResult records the final result report of the command at r.MonotonicSeq.
	PutResult(r *pb.CommandResultReport) error
	// Result returns the recorded result of seq; ErrNotFound when none.
	Result(seq uint64) (*pb.CommandResultReport, error)
	// SetOwnership saves the device set the cloud confirmed for this node.
	SetOwnership(devices []*pb.Device) error
	// Ownership returns the saved device set; ErrNotFound when the cloud never sent one.
	Ownership() ([]*pb.Device, error)
	// ReserveBatchSeqs reserves n batch sequence numbers for a stream kind ("telemetry", "events") and returns
	// the first; seqs never repeat across restarts.
	ReserveBatchSeqs(kind string, n uint64) (first uint64, err error)
	Close() error
}

// Options configures Open.
type Options struct {
	// DataDir holds the Badger files; "" keeps everything in memory (tests, demo).
	DataDir string
	Logger  *slog.Logger
	// Registerer, when set, receives Badger's numbers for this store (hashfleet_store_badger_*{store="node"}).
	Registerer prometheus.Registerer
}

var (
	keySeqMark    = []byte("seq/mark")
	keyOwnership  = []byte("owner/devices")
	prefixAudit   = []byte("audit/")
	prefixCommand = []byte("cmd/")
	prefixResult  = []byte("result/")
	prefixBatch   = "batchseq/"
)

// Badger is the Store on Badger.
type Badger struct {
	db     *badger.DB
	dir    string
	mu     sync.Mutex // serialises read-modify-write of the mark and batch seqs
	n      atomic.Uint64
	closed atomic.Bool
	// views is held (read) by Inspect for the length of its snapshot and (write) by Close, so a live view
	// never reads a closed Badger.
	views sync.RWMutex
}

// Open opens (creating) the node store.
func Open(o Options) (*Badger, error) {
	if err := settleWAL(o); err != nil {
		return nil, fmt.Errorf("node store: %w", err)
	}
	db, err := badgerkv.Open(sized(o, badgerkv.Options{Dir: o.DataDir, SyncWrites: true, Logger: o.Logger,
		Registerer: o.Registerer, Name: "node"}))
	if err != nil {
		return nil, fmt.Errorf("node store: %w", err)
	}
	s := &Badger{db: db, dir: o.DataDir}
	n, err := lastAuditN(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("node store: read audit log: %w", err)
	}
	s.n.Store(n)
	return s, nil
}

func seqKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, 0, len(prefix)+8)
	k = append(k, prefix...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// auditKey orders the audit log by time, then by insertion (n never repeats: it continues from the newest key
// at Open).
func (s *Badger) auditKey(rec *pb.AuditRecord) []byte {
	k := make([]byte, 0, len(prefixAudit)+16)
	k = append(k, prefixAudit...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(rec.GetAtUnixMs(), 0)))
	return binary.BigEndian.AppendUint64(k, s.n.Add(1))
}

// lastAuditN returns the insertion number of the newest audit key.
func lastAuditN(db *badger.DB) (uint64, error) {
	var n uint64
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAudit, Reverse: true})
		defer it.Close()
		seek := append(append([]byte{}, prefixAudit...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		it.Seek(seek)
		if it.Valid() {
			if k := it.Item().Key(); len(k) == len(prefixAudit)+16 {
				n = binary.BigEndian.Uint64(k[len(prefixAudit)+8:])
			}
		}
		return nil
	})
	return n, err
}

func (s *Badger) view(f func(*badger.Txn) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.View(f)
}

func (s *Badger) update(f func(*badger.Txn) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.Update(f)
}

func notFound(err error) error {
	if errors.Is(err, badgerkv.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// SeqMark implements Store.
func (s *Badger) SeqMark() (uint64, error) {
	var m pb.SeqMark
	err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, keySeqMark, &m) })
	if errors.Is(err, badgerkv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read seq mark: %w", err)
	}
	return m.GetSeq(), nil
}

// CommitCommand implements Store.
func (s *Badger) CommitCommand(rec *pb.AuditRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := rec.GetMonotonicSeq()
	err := s.update(func(txn *badger.Txn) error {
		var m pb.SeqMark
		if err := badgerkv.GetProto(txn, keySeqMark, &m); err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
			return err
		}
		if seq <= m.GetSeq() {
			return fmt.Errorf("seq %d, mark %d: %w", seq, m.GetSeq(), ErrSeqNotAbove)
		}
		if err := badgerkv.SetProto(txn, keySeqMark, &pb.SeqMark{Seq: seq, UpdatedAtUnixMs: rec.GetAtUnixMs()}); err != nil {
			return err
		}
		if err := badgerkv.SetProto(txn, seqKey(prefixCommand, seq), rec); err != nil {
			return err
		}
		return badgerkv.SetProto(txn, s.auditKey(rec), rec)
	})
	if err != nil {
		return fmt.Errorf("commit command seq %d: %w", seq, err)
	}
	return nil
}

// AppendAudit implements Store.
func (s *Badger) AppendAudit(rec *pb.AuditRecord) error {
	if err := s.update(func(txn *badger.Txn) error { return badgerkv.SetProto(txn, s.auditKey(rec), rec) }); err != nil {
		return fmt.Errorf("append audit seq %d: %w", rec.GetMonotonicSeq(), err)
	}
	return nil
}

// Audit implements Store.
func (s *Badger) Audit(skip, limit int) ([]*pb.AuditRecord, error) {
	var out []*pb.AuditRecord
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAudit, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		i := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if i++; i <= skip {
				continue
			}
			if limit > 0 && len(out) >= limit {
				return nil
			}
			rec := &pb.AuditRecord{}
			if err := badgerkv.GetProto(txn, it.Item().KeyCopy(nil), rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// Command implements Store.
func (s *Badger) Command(seq uint64) (*pb.AuditRecord, error) {
	rec := &pb.AuditRecord{}
	if err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, seqKey(prefixCommand, seq), rec) }); err != nil {
		return nil, fmt.Errorf("command seq %d: %w", seq, notFound(err))
	}
	return rec, nil
}

// PutResult implements Store.
func (s *Badger) PutResult(r *pb.CommandResultReport) error {
	if err := s.update(func(txn *badger.Txn) error {
		return badgerkv.SetProto(txn, seqKey(prefixResult, r.GetMonotonicSeq()), r)
	}); err != nil {
		return fmt.Errorf("record result seq %d: %w", r.GetMonotonicSeq(), err)
	}
	return nil
}

// Result implements Store.
func (s *Badger) Result(seq uint64) (*pb.CommandResultReport, error) {
	r := &pb.CommandResultReport{}
	if err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, seqKey(prefixResult, seq), r) }); err != nil {
		return nil, fmt.Errorf("result seq %d: %w", seq, notFound(err))
	}
	return r, nil
}

// SetOwnership implements Store.
func (s *Badger) SetOwnership(devices []*pb.Device) error {
	if err := s.update(func(txn *badger.Txn) error {
		return badgerkv.SetProto(txn, keyOwnership, &pb.HelloAck{Devices: devices})
	}); err != nil {
		return fmt.Errorf("save ownership: %w", err)
	}
	return nil
}

// Ownership implements Store.
func (s *Badger) Ownership() ([]*pb.Device, error) {
	var a pb.HelloAck
	if err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, keyOwnership, &a) }); err != nil {
		return nil, fmt.Errorf("ownership: %w", notFound(err))
	}
	return a.GetDevices(), nil
}

// ReserveBatchSeqs implements Store.
func (s *Badger) ReserveBatchSeqs(kind string, n uint64) (uint64, error) {
	if n == 0 {
		n = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := []byte(prefixBatch + kind)
	var first uint64
	err := s.update(func(txn *badger.Txn) error {
		var m pb.SeqMark
		if err := badgerkv.GetProto(txn, key, &m); err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
			return err
		}
		first = m.GetSeq() + 1
		return badgerkv.SetProto(txn, key, &pb.SeqMark{Seq: m.GetSeq() + n})
	})
	if err != nil {
		return 0, fmt.Errorf("reserve %d %s batch seqs: %w", n, kind, err)
	}
	return first, nil
}

// Close implements Store. It is safe to call more than once.
func (s *Badger) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.views.Lock()
	defer s.views.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close node store: %w", err)
	}
	return nil
}

var _ Store = (*Badger)(nil)
