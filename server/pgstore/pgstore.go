package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
)

// Store is server/store.Store and server/lease.Store on PostgreSQL. Safe for concurrent use by many
// goroutines and many processes: every multi-row change is one transaction, and every change a second
// activation of a grain could race on is a compare-and-set or a primary key.
type Store struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger
}

var (
	_ store.Store = (*Store)(nil)
	_ lease.Store = (*Store)(nil)
)

// Open connects, migrates the schema forward and returns the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: parse DSN: %w", ErrConfig, err)
	}
	pcfg.MaxConns = cfg.MaxConns
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: ping %s:%d: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
	}
	ms, err := Migrations()
	if err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := Migrate(ctx, pool, ms, cfg.Logger); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return &Store{cfg: cfg, pool: pool, log: cfg.Logger.With(slog.String("component", "pgstore"))}, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Pool is the connection pool (tests and tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether the database answers (readiness checks).
func (s *Store) Ping() error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.pool.Ping(ctx)
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.StatementTimeout)
}

func (s *Store) tx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
}

func marshal(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return b, nil
}

// queryProtos runs q and decodes column 0 of each row into a new T.
func queryProtos[T proto.Message](s *Store, mk func() T, q string, args ...any) ([]T, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		m := mk()
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("decode %T: %w", m, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Store) getProto(m proto.Message, what string, q string, args ...any) error {
	ctx, cancel := s.ctx()
	defer cancel()
	var b []byte
	err := s.pool.QueryRow(ctx, q, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%s: decode: %w", what, err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Devices implements store.Store.
func (s *Store) Devices() ([]*pb.Device, error) {
	out, err := queryProtos(s, func() *pb.Device { return &pb.Device{} }, `SELECT record FROM devices ORDER BY miner_id`)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return out, nil
}

// LatestTelemetry implements store.Store.
func (s *Store) LatestTelemetry() ([]*pb.Telemetry, error) {
	out, err := queryProtos(s, func() *pb.Telemetry { return &pb.Telemetry{} }, `SELECT record FROM telemetry_latest ORDER BY miner_id`)
	if err != nil {
		return nil, fmt.Errorf("latest telemetry: %w", err)
	}
	return out, nil
}

// Marks implements store.Store.
func (s *Store) Marks() ([]store.Mark, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT kind, node_id, seq FROM marks ORDER BY kind, node_id`)
	if err != nil {
		return nil, fmt.Errorf("read marks: %w", err)
	}
	defer rows.Close()
	var out []store.Mark
	for rows.Next() {
		var m store.Mark
		var seq int64
		if err := rows.Scan(&m.Kind, &m.Node, &seq); err != nil {
			return nil, fmt.Errorf("read marks: %w", err)
		}
		m.Seq = uint64(seq)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read marks: %w", err)
	}
	return out, nil
}

// Apply implements store.Store: one transaction, the mark written last.
func (s *Store) Apply(b store.Batch) error {
	q, err := buildBatch(b)
	if err != nil {
		return err
	}
	if q.Len() == 0 {
		return nil
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error { return tx.SendBatch(ctx, q).Close() })
	if err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	return nil
}

// ApplyOnce writes b only if b.Mark is above the stored mark of its node and kind, raising the mark in the
// same transaction (the mark row is locked first): a batch delivered to two members, or retried after a
// crash, is applied exactly once. A telemetry batch's samples also go to the telemetry history in that
// transaction. Otherwise it writes nothing and reports a duplicate.
func (s *Store) ApplyOnce(b store.Batch) (bool, error) {
	m := b.Mark
	if m == nil {
		return false, fmt.Errorf("apply once: batch has no mark: %w", store.ErrInvalidKey)
	}
	q, err := buildBatch(b)
	if err != nil {
		return false, err
	}
	rows, err := historyRows(m.Node, b.Telemetry)
	if err != nil {
		return false, err
	}
	dup := false
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO marks (kind, node_id, seq) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING`, m.Kind, m.Node); err != nil {
			return err
		}
		var cur int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM marks WHERE kind = $1 AND node_id = $2 FOR UPDATE`, m.Kind, m.Node).Scan(&cur); err != nil {
			return err
		}
		if uint64(cur) >= m.Seq {
			dup = true
			return nil
		}
		if err := tx.SendBatch(ctx, q).Close(); err != nil {
			return err
		}
		if m.Kind != store.KindTelemetry || len(b.Telemetry) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"telemetry_history"}, []string{"miner_id", "node_id", "observed_at", "record"},
			pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("apply once %s/%s %d: %w", m.Kind, m.Node, m.Seq, err)
	}
	return dup, nil
}

func buildBatch(b store.Batch) (*pgx.Batch, error) {
	q := &pgx.Batch{}
	for _, d := range b.Devices {
		if err := store.ValidID(d.GetMinerId()); err != nil {
			return nil, fmt.Errorf("apply device: %w", err)
		}
		v, err := marshal(d)
		if err != nil {
			return nil, fmt.Errorf("apply device %s: %w", d.GetMinerId(), err)
		}
		q.Queue(`INSERT INTO devices (miner_id, node_id, record) VALUES ($1, $2, $3)
			ON CONFLICT (miner_id) DO UPDATE SET node_id = EXCLUDED.node_id, record = EXCLUDED.record`, d.GetMinerId(), d.GetNodeId(), v)
		if store.ValidNodeID(d.GetNodeId()) == nil {
			q.Queue(`DELETE FROM pending_devices WHERE node_id = $1 AND miner_id = $2`, d.GetNodeId(), d.GetMinerId())
		}
	}
	for _, d := range b.Pending {
		if err := store.ValidID(d.GetMinerId()); err != nil {
			return nil, fmt.Errorf("apply pending device: %w", err)
		}
		if err := store.ValidNodeID(d.GetNodeId()); err != nil {
			return nil, fmt.Errorf("apply pending device %s: %w", d.GetMinerId(), err)
		}
		v, err := marshal(d)
		if err != nil {
			return nil, fmt.Errorf("apply pending device %s: %w", d.GetMinerId(), err)
		}
		q.Queue(`INSERT INTO pending_devices (node_id, miner_id, record) VALUES ($1, $2, $3)
			ON CONFLICT (node_id, miner_id) DO UPDATE SET record = EXCLUDED.record`, d.GetNodeId(), d.GetMinerId(), v)
	}
	for _, a := range b.Audit {
		if err := store.ValidNodeID(a.GetNodeId()); err != nil {
			return nil, fmt.Errorf("apply audit record: %w", err)
		}
		v, err := marshal(a)
		if err != nil {
			return nil, fmt.Errorf("apply audit record of %s: %w", a.GetNodeId(), err)
		}
		q.Queue(`INSERT INTO audit (node_id, at_ms, record) VALUES ($1, $2, $3)`, a.GetNodeId(), max(a.GetAtUnixMs(), 0), v)
	}
	for _, t := range b.Telemetry {
		if err := store.ValidID(t.GetMinerId()); err != nil {
			return nil, fmt.Errorf("apply telemetry: %w", err)
		}
		v, err := marshal(t)
		if err != nil {
			return nil, fmt.Errorf("apply telemetry %s: %w", t.GetMinerId(), err)
		}
		q.Queue(`INSERT INTO telemetry_latest (miner_id, observed_at_ms, record) VALUES ($1, $2, $3)
			ON CONFLICT (miner_id) DO UPDATE SET observed_at_ms = EXCLUDED.observed_at_ms, record = EXCLUDED.record`,
			t.GetMinerId(), t.GetObservedAtUnixMs(), v)
	}
	if m := b.Mark; m != nil {
		if err := store.ValidNodeID(m.Node); err != nil {
			return nil, fmt.Errorf("apply mark: %w", err)
		}
		q.Queue(`INSERT INTO marks (kind, node_id, seq) VALUES ($1, $2, $3)
			ON CONFLICT (kind, node_id) DO UPDATE SET seq = EXCLUDED.seq`, m.Kind, m.Node, int64(m.Seq))
	}
	return q, nil
}

// PutCommand implements store.Store.
func (s *Store) PutCommand(rec *pb.CommandRecord) error {
	id := rec.GetCommandId()
	if err := store.ValidID(id); err != nil {
		return fmt.Errorf("put command: %w", err)
	}
	v, err := marshal(rec)
	if err != nil {
		return fmt.Errorf("put command %s: %w", id, err)
	}
	var idem *string
	if k := rec.GetIdempotencyKey(); k != "" {
		idem = &k
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if idem != nil {
			// The key now names this command (as the Badger store's idem/<key> entry is overwritten).
			if _, err := tx.Exec(ctx, `UPDATE commands SET idempotency_key = NULL WHERE idempotency_key = $1 AND command_id <> $2`, *idem, id); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO commands (command_id, idempotency_key, active, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (command_id) DO UPDATE SET idempotency_key = COALESCE(EXCLUDED.idempotency_key, commands.idempotency_key),
				active = EXCLUDED.active, record = EXCLUDED.record`, id, idem, rec.GetFinishedAtUnixMs() == 0, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("put command %s: %w", id, err)
	}
	return nil
}

// Command implements store.Store.
func (s *Store) Command(id string) (*pb.CommandRecord, error) {
	rec := &pb.CommandRecord{}
	if err := s.getProto(rec, "command "+id, `SELECT record FROM commands WHERE command_id = $1`, id); err != nil {
		return nil, err
	}
	return rec, nil
}

// CommandByIdempotencyKey implements store.Store.
func (s *Store) CommandByIdempotencyKey(k string) (*pb.CommandRecord, error) {
	rec := &pb.CommandRecord{}
	if err := s.getProto(rec, fmt.Sprintf("idempotency key %q", k), `SELECT record FROM commands WHERE idempotency_key = $1`, k); err != nil {
		return nil, err
	}
	return rec, nil
}

// ActiveCommands implements store.Store.
func (s *Store) ActiveCommands() ([]*pb.CommandRecord, error) {
	out, err := queryProtos(s, func() *pb.CommandRecord { return &pb.CommandRecord{} }, `SELECT record FROM commands WHERE active ORDER BY command_id`)
	if err != nil {
		return nil, fmt.Errorf("active commands: %w", err)
	}
	return out, nil
}

// Commands implements store.Store.
func (s *Store) Commands() ([]*pb.CommandRecord, error) {
	out, err := queryProtos(s, func() *pb.CommandRecord { return &pb.CommandRecord{} }, `SELECT record FROM commands ORDER BY command_id`)
	if err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	return out, nil
}

// NodeIDs implements store.Store.
func (s *Store) NodeIDs() ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT node_id FROM node_seq UNION SELECT DISTINCT node_id FROM node_queue ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("node ids: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("node ids: %w", err)
	}
	return out, nil
}

// NodeQueue implements store.Store (one snapshot: counter and queue agree).
func (s *Store) NodeQueue(node string) (uint64, []*pb.ControlCommand, error) {
	if err := store.ValidNodeID(node); err != nil {
		return 0, nil, fmt.Errorf("node queue: %w", err)
	}
	var seq int64
	var queue []*pb.ControlCommand
	err := s.readTx(func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq FROM node_seq WHERE node_id = $1`, node).Scan(&seq)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT command FROM node_queue WHERE node_id = $1 ORDER BY seq`, node)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			c := &pb.ControlCommand{}
			if err := proto.Unmarshal(b, c); err != nil {
				return fmt.Errorf("decode queued command: %w", err)
			}
			queue = append(queue, c)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, nil, fmt.Errorf("node %s queue: %w", node, err)
	}
	return uint64(seq), queue, nil
}

func (s *Store) readTx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(ctx, tx) })
}

// Enqueue implements store.Store. A seq already sent to the node is refused with ErrSeqTaken (wrapping
// store.ErrExists): two activations of one Node grain can never both send a command under one seq.
func (s *Store) Enqueue(node string, cmd *pb.ControlCommand) error {
	if err := store.ValidNodeID(node); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	seq := cmd.GetMonotonicSeq()
	v, err := marshal(cmd)
	if err != nil {
		return fmt.Errorf("enqueue %s seq %d: %w", node, seq, err)
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := raiseSeq(ctx, tx, node, seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO node_sent (node_id, seq, command, command_id) VALUES ($1, $2, $3, $4)`, node, int64(seq), v,
			cmd.GetCommandId()); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: %w", ErrSeqTaken, store.ErrExists)
			}
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO node_queue (node_id, seq, command) VALUES ($1, $2, $3)`, node, int64(seq), v)
		return err
	})
	if err != nil {
		return fmt.Errorf("enqueue %s seq %d: %w", node, seq, err)
	}
	return nil
}

// RaiseSeq implements store.Store.
func (s *Store) RaiseSeq(node string, seq uint64) error {
	if err := store.ValidNodeID(node); err != nil {
		return fmt.Errorf("raise seq: %w", err)
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error { return raiseSeq(ctx, tx, node, seq) })
	if err != nil {
		return fmt.Errorf("raise seq %s to %d: %w", node, seq, err)
	}
	return nil
}

func raiseSeq(ctx context.Context, tx pgx.Tx, node string, seq uint64) error {
	_, err := tx.Exec(ctx, `INSERT INTO node_seq (node_id, seq) VALUES ($1, $2)
		ON CONFLICT (node_id) DO UPDATE SET seq = GREATEST(node_seq.seq, EXCLUDED.seq)`, node, int64(seq))
	return err
}

// AllocSeq atomically allocates the node's next command seq (last + 1) and returns it. Two members
// allocating for one node at once get two different seqs, each above every seq allocated before.
func (s *Store) AllocSeq(node string) (uint64, error) {
	if err := store.ValidNodeID(node); err != nil {
		return 0, fmt.Errorf("alloc seq: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var seq int64
	err := s.pool.QueryRow(ctx, `INSERT INTO node_seq (node_id, seq) VALUES ($1, 1)
		ON CONFLICT (node_id) DO UPDATE SET seq = node_seq.seq + 1 RETURNING seq`, node).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("alloc seq for %s: %w", node, err)
	}
	return uint64(seq), nil
}

// Dequeue implements store.Store.
func (s *Store) Dequeue(node string, seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	ss := make([]int64, len(seqs))
	for i, q := range seqs {
		ss[i] = int64(q)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM node_queue WHERE node_id = $1 AND seq = ANY($2)`, node, ss); err != nil {
		return fmt.Errorf("dequeue %s %v: %w", node, seqs, err)
	}
	return nil
}

// SentCommand implements store.Store.
func (s *Store) SentCommand(node string, seq uint64) (*pb.ControlCommand, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("sent command: %w", err)
	}
	c := &pb.ControlCommand{}
	if err := s.getProto(c, fmt.Sprintf("node %s seq %d", node, seq), `SELECT command FROM node_sent WHERE node_id = $1 AND seq = $2`, node, int64(seq)); err != nil {
		return nil, err
	}
	return c, nil
}

// PendingDevices implements store.Store.
func (s *Store) PendingDevices() ([]*pb.Device, error) {
	out, err := queryProtos(s, func() *pb.Device { return &pb.Device{} }, `SELECT record FROM pending_devices ORDER BY node_id, miner_id`)
	if err != nil {
		return nil, fmt.Errorf("pending devices: %w", err)
	}
	return out, nil
}

// NodeAudit implements store.Store.
func (s *Store) NodeAudit(node string, limit int) ([]*pb.AuditRecord, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("node audit: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	out, err := queryProtos(s, func() *pb.AuditRecord { return &pb.AuditRecord{} },
		`SELECT record FROM (SELECT record, at_ms, n FROM audit WHERE node_id = $1 ORDER BY at_ms DESC, n DESC LIMIT $2) t ORDER BY at_ms, n`, node, limit)
	if err != nil {
		return nil, fmt.Errorf("node %s audit: %w", node, err)
	}
	return out, nil
}

// PutScan implements store.Commissioning.
func (s *Store) PutScan(rec *pb.ScanRecord) error {
	if err := store.ValidNodeID(rec.GetScanId()); err != nil {
		return fmt.Errorf("put scan: %w", err)
	}
	if err := s.putRecord(`scans`, `scan_id`, rec.GetScanId(), rec); err != nil {
		return fmt.Errorf("put scan %s: %w", rec.GetScanId(), err)
	}
	return nil
}

// Scan implements store.Commissioning.
func (s *Store) Scan(id string) (*pb.ScanRecord, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	rec := &pb.ScanRecord{}
	if err := s.getProto(rec, "scan/"+id, `SELECT record FROM scans WHERE scan_id = $1`, id); err != nil {
		return nil, err
	}
	return rec, nil
}

// Scans implements store.Commissioning.
func (s *Store) Scans(limit int) ([]*pb.ScanRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	recs, err := queryProtos(s, func() *pb.ScanRecord { return &pb.ScanRecord{} },
		`SELECT record FROM (SELECT record, scan_id FROM scans ORDER BY scan_id DESC LIMIT $1) t ORDER BY scan_id`, limit)
	if err != nil {
		return nil, fmt.Errorf("scans: %w", err)
	}
	for _, r := range recs {
		r.Found, r.Errors = nil, nil
	}
	return recs, nil
}

// PutPairing implements store.Commissioning.
func (s *Store) PutPairing(rec *pb.PairingRecord) error {
	if err := store.ValidNodeID(rec.GetPairingId()); err != nil {
		return fmt.Errorf("put pairing: %w", err)
	}
	if err := s.putRecord(`pairings`, `pairing_id`, rec.GetPairingId(), rec); err != nil {
		return fmt.Errorf("put pairing %s: %w", rec.GetPairingId(), err)
	}
	return nil
}

// Pairing implements store.Commissioning.
func (s *Store) Pairing(id string) (*pb.PairingRecord, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	rec := &pb.PairingRecord{}
	if err := s.getProto(rec, "pairing/"+id, `SELECT record FROM pairings WHERE pairing_id = $1`, id); err != nil {
		return nil, err
	}
	return rec, nil
}

// Pairings implements store.Commissioning.
func (s *Store) Pairings(limit int) ([]*pb.PairingRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := queryProtos(s, func() *pb.PairingRecord { return &pb.PairingRecord{} },
		`SELECT record FROM (SELECT record, pairing_id FROM pairings ORDER BY pairing_id DESC LIMIT $1) t ORDER BY pairing_id`, limit)
	if err != nil {
		return nil, fmt.Errorf("pairings: %w", err)
	}
	return out, nil
}

// putRecord upserts one protobuf record; table and column are constants of this package.
func (s *Store) putRecord(table, col, id string, m proto.Message) error {
	v, err := marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.pool.Exec(ctx, `INSERT INTO `+table+` (`+col+`, record) VALUES ($1, $2)
		ON CONFLICT (`+col+`) DO UPDATE SET record = EXCLUDED.record`, id, v)
	return err
}

func isSerialization(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// IssueOnce allocates the node's next seq, builds the command for it and persists it in the node's queue
// and sent log, all in one transaction holding the node's counter row: commands for one node are issued one
// at a time across members, seqs have no gaps, and a command id already sent to the node is not issued
// again (the earlier command is returned with existed=true, and the counter is left as it was).
func (s *Store) IssueOnce(node, commandID string, build func(seq uint64) (*pb.ControlCommand, error)) (*pb.ControlCommand, bool, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, false, fmt.Errorf("issue: %w", err)
	}
	if err := store.ValidID(commandID); err != nil {
		return nil, false, fmt.Errorf("issue: command id: %w", err)
	}
	var out *pb.ControlCommand
	errExisted := errors.New("existed")
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, `INSERT INTO node_seq (node_id, seq) VALUES ($1, 1)
			ON CONFLICT (node_id) DO UPDATE SET seq = node_seq.seq + 1 RETURNING seq`, node).Scan(&seq); err != nil {
			return err
		}
		var b []byte
		err := tx.QueryRow(ctx, `SELECT command FROM node_sent WHERE node_id = $1 AND command_id = $2 ORDER BY seq LIMIT 1`, node, commandID).Scan(&b)
		switch {
		case err == nil:
			out = &pb.ControlCommand{}
			if err := proto.Unmarshal(b, out); err != nil {
				return fmt.Errorf("decode sent command: %w", err)
			}
			return errExisted // roll the counter back
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		cmd, err := build(uint64(seq))
		if err != nil {
			return err
		}
		if cmd.GetMonotonicSeq() != uint64(seq) || cmd.GetCommandId() != commandID {
			return fmt.Errorf("built command has seq %d and id %q, want %d and %q: %w", cmd.GetMonotonicSeq(), cmd.GetCommandId(), seq, commandID, store.ErrInvalidKey)
		}
		v, err := marshal(cmd)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO node_sent (node_id, seq, command, command_id) VALUES ($1, $2, $3, $4)`, node, seq, v, commandID); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: %w", ErrSeqTaken, store.ErrExists)
			}
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO node_queue (node_id, seq, command) VALUES ($1, $2, $3)`, node, seq, v); err != nil {
			return err
		}
		out = cmd
		return nil
	})
	if errors.Is(err, errExisted) {
		return out, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("issue %s to %s: %w", commandID, node, err)
	}
	return out, false, nil
}
