package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// Options opens a Badger store.
type Options struct {
	// Dir holds the store; "" opens the in-memory twin (nothing survives Close).
	Dir string
	// MemTableSize in bytes. Default 16 MiB: a command record naming 20,000 miners is about 1.5 MiB and a
	// transaction may hold 15% of a memtable.
	MemTableSize int64
	Logger       *slog.Logger
	// Registerer, when set, receives Badger's numbers for this store (hashfleet_store_badger_*{store="cloud"}).
	Registerer prometheus.Registerer
}

// Badger is the Store on Badger.
type Badger struct {
	db *badger.DB
	// n numbers audit and security-event keys written in the same millisecond; it starts from the wall clock
	// in nanoseconds at Open, so keys of a later process never collide with an earlier one's.
	n atomic.Uint64
}

var _ Store = (*Badger)(nil)

// Open opens (creating if needed) the store in o.Dir, or in memory when o.Dir is "".
func Open(o Options) (*Badger, error) {
	mt := o.MemTableSize
	if mt <= 0 {
		mt = 16 << 20
	}
	db, err := badgerkv.Open(badgerkv.Options{Dir: o.Dir, MemTableSize: mt, SyncWrites: o.Dir != "", Logger: o.Logger,
		Registerer: o.Registerer, Name: "cloud"})
	if err != nil {
		return nil, err
	}
	s := &Badger{db: db}
	s.n.Store(uint64(time.Now().UnixNano()))
	return s, nil
}

// OpenInMemory opens the in-memory twin.
func OpenInMemory(log *slog.Logger) (*Badger, error) { return Open(Options{Logger: log}) }

// Close flushes and closes the store.
func (s *Badger) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

const (
	pDevice    = "dev/"
	pTelemetry = "tel/"
	pCommand   = "cmd/"
	pActive    = "cmdact/"
	pIdem      = "idem/"
	pNodeSeq   = "nseq/"
	pQueue     = "nq/"
	pMark      = "mark/"
	pSent      = "nsent/"
	pNodeAudit = "naudit/"
	pPending   = "pend/"
)

func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func queueKey(node string, seq uint64) []byte {
	k := key(pQueue, node, "/")
	return binary.BigEndian.AppendUint64(k, seq)
}

func sentKey(node string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(key(pSent, node, "/"), seq)
}

// auditKey orders a node's audit records by time, then by arrival.
func (s *Badger) auditKey(node string, atMs int64) []byte {
	k := key(pNodeAudit, node, "/")
	k = binary.BigEndian.AppendUint64(k, uint64(max(atMs, 0)))
	return binary.BigEndian.AppendUint64(k, s.n.Add(1))
}

func (s *Badger) Devices() ([]*pb.Device, error) {
	return scanProtos(s.db, []byte(pDevice), func() *pb.Device { return &pb.Device{} })
}

func (s *Badger) LatestTelemetry() ([]*pb.Telemetry, error) {
	return scanProtos(s.db, []byte(pTelemetry), func() *pb.Telemetry { return &pb.Telemetry{} })
}

func (s *Badger) Marks() ([]Mark, error) {
	var out []Mark
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte(pMark), func(k, v []byte) error {
			rest := bytes.TrimPrefix(k, []byte(pMark))
			kind, node, ok := bytes.Cut(rest, []byte("/"))
			if !ok {
				return fmt.Errorf("mark key %q has no kind", k)
			}
			var m pb.SeqMark
			if err := proto.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode mark %q: %w", k, err)
			}
			out = append(out, Mark{Node: string(node), Kind: string(kind), Seq: m.GetSeq()})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read marks: %w", err)
	}
	return out, nil
}

// Apply writes the batch with one WriteBatch: devices and samples first, the mark last.
func (s *Badger) Apply(b Batch) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	set := func(k []byte, m proto.Message) error {
		v, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode %T: %w", m, err)
		}
		return wb.Set(k, v)
	}
	for _, d := range b.Devices {
		if err := ValidID(d.GetMinerId()); err != nil {
			return fmt.Errorf("apply device: %w", err)
		}
		if err := set(key(pDevice, d.GetMinerId()), d); err != nil {
			return fmt.Errorf("apply device %s: %w", d.GetMinerId(), err)
		}
		if ValidNodeID(d.GetNodeId()) == nil {
			// Registered: no longer waiting for the operator to pair it.
			if err := wb.Delete(key(pPending, d.GetNodeId(), "/", d.GetMinerId())); err != nil {
				return fmt.Errorf("apply device %s: %w", d.GetMinerId(), err)
			}
		}
	}
	for _, d := range b.Pending {
		if err := ValidID(d.GetMinerId()); err != nil {
			return fmt.Errorf("apply pending device: %w", err)
		}
		if err := ValidNodeID(d.GetNodeId()); err != nil {
			return fmt.Errorf("apply pending device %s: %w", d.GetMinerId(), err)
		}
		if err := set(key(pPending, d.GetNodeId(), "/", d.GetMinerId()), d); err != nil {
			return fmt.Errorf("apply pending device %s: %w", d.GetMinerId(), err)
		}
	}
	for _, a := range b.Audit {
		if err := ValidNodeID(a.GetNodeId()); err != nil {
			return fmt.Errorf("apply audit record: %w", err)
		}
		if err := set(s.auditKey(a.GetNodeId(), a.GetAtUnixMs()), a); err != nil {
			return fmt.Errorf("apply audit record of %s: %w", a.GetNodeId(), err)
		}
	}
	if len(b.TelemetryEncoded) > 0 && len(b.TelemetryEncoded) != len(b.Telemetry) {
		return fmt.Errorf("apply telemetry: %d encodings for %d samples", len(b.TelemetryEncoded), len(b.Telemetry))
	}
	for i, t := range b.Telemetry {
		if err := ValidID(t.GetMinerId()); err != nil {
			return fmt.Errorf("apply telemetry: %w", err)
		}
		k := key(pTelemetry, t.GetMinerId())
		var err error
		if len(b.TelemetryEncoded) > 0 && b.TelemetryEncoded[i] != nil {
			err = wb.Set(k, b.TelemetryEncoded[i])
		} else {
			err = set(k, t)
		}
		if err != nil {
			return fmt.Errorf("apply telemetry %s: %w", t.GetMinerId(), err)
		}
	}
	if m := b.Mark; m != nil {
		if err := ValidNodeID(m.Node); err != nil {
			return fmt.Errorf("apply mark: %w", err)
		}
		if err := set(key(pMark, m.Kind, "/", m.Node), &pb.SeqMark{Seq: m.Seq}); err != nil {
			return fmt.Errorf("apply mark %s/%s: %w", m.Kind, m.Node, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	return nil
}

func (s *Badger) PutCommand(rec *pb.CommandRecord) error {
	id := rec.GetCommandId()
	if err := ValidID(id); err != nil {
		return fmt.Errorf("put command: %w", err)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := badgerkv.SetProto(txn, key(pCommand, id), rec); err != nil {
			return err
		}
		if k := rec.GetIdempotencyKey(); k != "" {
			if err := txn.Set(key(pIdem, k), []byte(id)); err != nil {
				return err
			}
		}
		if rec.GetFinishedAtUnixMs() == 0 {
			return txn.Set(key(pActive, id), nil)
		}
		return txn.Delete(key(pActive, id))
	})
	if err != nil {
		return fmt.Errorf("put command %s: %w", id, err)
	}
	return nil
}

func (s *Badger) Command(id string) (*pb.CommandRecord, error) {
	rec := &pb.CommandRecord{}
	err := s.db.View(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, key(pCommand, id), rec) })
	if errors.Is(err, badgerkv.ErrNotFound) {
		return nil, fmt.Errorf("command %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", id, err)
	}
	return rec, nil
}

func (s *Badger) CommandByIdempotencyKey(k string) (*pb.CommandRecord, error) {
	var id string
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pIdem, k))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		id = string(v)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("idempotency key %q: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency key %q: %w", k, err)
	}
	return s.Command(id)
}

func (s *Badger) ActiveCommands() ([]*pb.CommandRecord, error) {
	var ids []string
	err := s.db.View(func(txn *badger.Txn) error {
		return scanKeys(txn, []byte(pActive), func(k []byte) error {
			ids = append(ids, string(bytes.TrimPrefix(k, []byte(pActive))))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("active commands: %w", err)
	}
	out := make([]*pb.CommandRecord, 0, len(ids))
	for _, id := range ids {
		rec, err := s.Command(id)
		if err != nil {
			return nil, fmt.Errorf("active commands: %w", err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (s *Badger) Commands() ([]*pb.CommandRecord, error) {
	return scanProtos(s.db, []byte(pCommand), func() *pb.CommandRecord { return &pb.CommandRecord{} })
}

func (s *Badger) NodeIDs() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	err := s.db.View(func(txn *badger.Txn) error {
		if err := scanKeys(txn, []byte(pNodeSeq), func(k []byte) error {
			add(string(bytes.TrimPrefix(k, []byte(pNodeSeq))))
			return nil
		}); err != nil {
			return err
		}
		return scanKeys(txn, []byte(pQueue), func(k []byte) error {
			rest := bytes.TrimPrefix(k, []byte(pQueue))
			if len(rest) > 9 {
				add(string(rest[:len(rest)-9]))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("node ids: %w", err)
	}
	return out, nil
}

func (s *Badger) NodeQueue(node string) (uint64, []*pb.ControlCommand, error) {
	if err := ValidNodeID(node); err != nil {
		return 0, nil, fmt.Errorf("node queue: %w", err)
	}
	var seq uint64
	var queue []*pb.ControlCommand
	err := s.db.View(func(txn *badger.Txn) error {
		var m pb.SeqMark
		switch err := badgerkv.GetProto(txn, key(pNodeSeq, node), &m); {
		case errors.Is(err, badgerkv.ErrNotFound):
		case err != nil:
			return err
		default:
			seq = m.GetSeq()
		}
		return scan(txn, key(pQueue, node, "/"), func(k, v []byte) error {
			c := &pb.ControlCommand{}
			if err := proto.Unmarshal(v, c); err != nil {
				return fmt.Errorf("decode queued command %q: %w", k, err)
			}
			queue = append(queue, c)
			return nil
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("node %s queue: %w", node, err)
	}
	return seq, queue, nil
}

func (s *Badger) Enqueue(node string, cmd *pb.ControlCommand) error {
	if err := ValidNodeID(node); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	seq := cmd.GetMonotonicSeq()
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := raiseSeq(txn, node, seq); err != nil {
			return err
		}
		if err := badgerkv.SetProto(txn, sentKey(node, seq), cmd); err != nil {
			return err
		}
		return badgerkv.SetProto(txn, queueKey(node, seq), cmd)
	})
	if err != nil {
		return fmt.Errorf("enqueue %s seq %d: %w", node, seq, err)
	}
	return nil
}

func (s *Badger) RaiseSeq(node string, seq uint64) error {
	if err := ValidNodeID(node); err != nil {
		return fmt.Errorf("raise seq: %w", err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return raiseSeq(txn, node, seq) }); err != nil {
		return fmt.Errorf("raise seq %s to %d: %w", node, seq, err)
	}
	return nil
}

func raiseSeq(txn *badger.Txn, node string, seq uint64) error {
	var m pb.SeqMark
	err := badgerkv.GetProto(txn, key(pNodeSeq, node), &m)
	if err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
		return err
	}
	if err == nil && m.GetSeq() >= seq {
		return nil
	}
	return badgerkv.SetProto(txn, key(pNodeSeq, node), &pb.SeqMark{Seq: seq})
}

func (s *Badger) Dequeue(node string, seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, q := range seqs {
			if err := txn.Delete(queueKey(node, q)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dequeue %s %v: %w", node, seqs, err)
	}
	return nil
}

func scan(txn *badger.Txn, prefix []byte, fn func(k, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100, Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return nil
}

func scanKeys(txn *badger.Txn, prefix []byte, fn func(k []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := fn(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	return nil
}

func scanProtos[T proto.Message](db *badger.DB, prefix []byte, mk func() T) ([]T, error) {
	var out []T
	err := db.View(func(txn *badger.Txn) error {
		return scan(txn, prefix, func(k, v []byte) error {
			m := mk()
			if err := proto.Unmarshal(v, m); err != nil {
				return fmt.Errorf("decode %q as %T: %w", k, m, err)
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", prefix, err)
	}
	return out, nil
}
