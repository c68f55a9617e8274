package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
)

// Org commands of a cloud cluster (server/cloudcluster): the Org grain records a command with every miner
// PENDING before anything is sent (CreateOrgCommand), each Node grain's seq is kept per part, and each
// miner's Miner grain writes its own row of command_results (PutMinerResult), conditionally on the row not
// being final: per-row writes that never conflict and never regress.

// MinerOwner is a registered miner's owning node and that node's org ("" when the node has no record).
type MinerOwner struct {
	MinerID string
	NodeID  string
	OrgID   string
}

// CommandPart is one owning node's part of an org command.
type CommandPart struct {
	NodeID   string
	MinerIDs []string
	// Seq is what the node's grain queued the part under; 0 until queued.
	Seq uint64
}

// OrgCommand is an org command as stored: the record with every miner's current result merged in, its
// parts, and its timing.
type OrgCommand struct {
	OrgID    string
	Record   *pb.CommandRecord
	Parts    []CommandPart
	Deadline time.Time
	Active   bool
}

// MinerCommand is one command naming a miner, with the miner's current result.
type MinerCommand struct {
	CommandID string
	NodeID    string
	Result    *pb.MinerResult
	Created   time.Time
	Deadline  time.Time
	Final     bool
}

// MinerOwners returns the owner of each of ids that is in the device registry (absent ids are unknown).
func (s *Store) MinerOwners(ids []string) (map[string]MinerOwner, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT d.miner_id, d.node_id, COALESCE(n.org_id, '')
		FROM devices d LEFT JOIN nodes n ON n.node_id = d.node_id WHERE d.miner_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("miner owners: %w", err)
	}
	out := make(map[string]MinerOwner, len(ids))
	var o MinerOwner
	if _, err := pgx.ForEachRow(rows, []any{&o.MinerID, &o.NodeID, &o.OrgID}, func() error {
		out[o.MinerID] = o
		return nil
	}); err != nil {
		return nil, fmt.Errorf("miner owners: %w", err)
	}
	return out, nil
}

var errOrgCommandExists = errors.New("org command exists")

// CreateOrgCommand records rec as a command of org, in one transaction: the record (every miner as rec has
// it, PENDING), one result row per miner on its node (nodeOf: miner → owning node) and one part per node.
// If org already has a command under rec's idempotency key, nothing is written and that command's id is
// returned with existed=true (two requests racing with one key record one command).
func (s *Store) CreateOrgCommand(org string, rec *pb.CommandRecord, nodeOf map[string]string, deadline time.Time) (string, bool, error) {
	id := rec.GetCommandId()
	if err := store.ValidNodeID(org); err != nil {
		return "", false, fmt.Errorf("create org command: org: %w", err)
	}
	if err := store.ValidID(id); err != nil {
		return "", false, fmt.Errorf("create org command: %w", err)
	}
	for _, m := range rec.GetMinerIds() {
		if store.ValidNodeID(nodeOf[m]) != nil {
			return "", false, fmt.Errorf("create org command %s: miner %q has no owning node: %w", id, m, store.ErrInvalidKey)
		}
	}
	v, err := marshal(rec)
	if err != nil {
		return "", false, fmt.Errorf("create org command %s: %w", id, err)
	}
	var key *string
	if k := rec.GetIdempotencyKey(); k != "" {
		key = &k
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO commands (command_id, idempotency_key, active, record) VALUES ($1, NULL, true, $2)`, id, v); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO org_commands (command_id, org_id, idempotency_key, created_at_ms, deadline_ms, open_miners)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
			id, org, key, rec.GetCreatedAtUnixMs(), deadline.UnixMilli(), len(rec.GetMinerIds()))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errOrgCommandExists // roll the record back
		}
		parts := map[string]bool{}
		rows := make([][]any, 0, len(rec.GetMinerIds()))
		for _, m := range rec.GetMinerIds() {
			parts[nodeOf[m]] = true
			rows = append(rows, []any{id, m, nodeOf[m], int32(pb.ResultCode_RESULT_CODE_PENDING)})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"command_results"}, []string{"command_id", "miner_id", "node_id", "code"},
			pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for n := range parts {
			b.Queue(`INSERT INTO command_parts (command_id, node_id) VALUES ($1, $2)`, id, n)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, errOrgCommandExists) {
		prev, err := s.OrgCommandByKey(org, *key)
		if err != nil {
			return "", false, fmt.Errorf("create org command %s: %w", id, err)
		}
		return prev, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("create org command %s: %w", id, err)
	}
	return id, false, nil
}

// OrgCommandByKey returns the id of org's command under idempotency key k; store.ErrNotFound when none.
func (s *Store) OrgCommandByKey(org, k string) (string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var id string
	err := s.pool.QueryRow(ctx, `SELECT command_id FROM org_commands WHERE org_id = $1 AND idempotency_key = $2`, org, k).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("org %s idempotency key %q: %w", org, k, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("org %s idempotency key %q: %w", org, k, err)
	}
	return id, nil
}

// OrgCommand returns an org command with every miner's current result merged into its record and the
// record's status recomputed by status; store.ErrNotFound when there is none.
func (s *Store) OrgCommand(id string, status func(*pb.CommandRecord) pb.ResultCode) (*OrgCommand, error) {
	out := &OrgCommand{Record: &pb.CommandRecord{}}
	err := s.readTx(func(ctx context.Context, tx pgx.Tx) error {
		var v []byte
		var deadline int64
		err := tx.QueryRow(ctx, `SELECT o.org_id, o.deadline_ms, o.active, c.record FROM org_commands o
			JOIN commands c ON c.command_id = o.command_id WHERE o.command_id = $1`, id).Scan(&out.OrgID, &deadline, &out.Active, &v)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("org command %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		out.Deadline = time.UnixMilli(deadline)
		if err := proto.Unmarshal(v, out.Record); err != nil {
			return fmt.Errorf("decode command record: %w", err)
		}
		if err := mergeResults(ctx, tx, out.Record); err != nil {
			return err
		}
		out.Parts, err = commandParts(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("org command %s: %w", id, err)
	}
	if status != nil {
		out.Record.Status = status(out.Record)
	}
	return out, nil
}

// mergeResults overlays the stored per-miner rows on rec, and the parts' seqs on rec.NodeSeqs.
func mergeResults(ctx context.Context, tx pgx.Tx, rec *pb.CommandRecord) error {
	id := rec.GetCommandId()
	rows, err := tx.Query(ctx, `SELECT miner_id, code, message, started_at_ms, finished_at_ms FROM command_results WHERE command_id = $1`, id)
	if err != nil {
		return err
	}
	if rec.Results == nil {
		rec.Results = map[string]*pb.MinerResult{}
	}
	var r pb.MinerResult
	var code int32
	if _, err := pgx.ForEachRow(rows, []any{&r.MinerId, &code, &r.Message, &r.StartedAtUnixMs, &r.FinishedAtUnixMs}, func() error {
		rec.Results[r.MinerId] = &pb.MinerResult{MinerId: r.MinerId, Code: pb.ResultCode(code), Message: r.Message,
			StartedAtUnixMs: r.StartedAtUnixMs, FinishedAtUnixMs: r.FinishedAtUnixMs}
		return nil
	}); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT node_id, seq FROM command_parts WHERE command_id = $1 AND seq > 0`, id)
	if err != nil {
		return err
	}
	if rec.NodeSeqs == nil {
		rec.NodeSeqs = map[string]uint64{}
	}
	var node string
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&node, &seq}, func() error {
		rec.NodeSeqs[node] = uint64(seq)
		return nil
	})
	return err
}

func commandParts(ctx context.Context, tx pgx.Tx, id string) ([]CommandPart, error) {
	rows, err := tx.Query(ctx, `SELECT p.node_id, p.seq, r.miner_id FROM command_parts p
		JOIN command_results r ON r.command_id = p.command_id AND r.node_id = p.node_id
		WHERE p.command_id = $1 ORDER BY p.node_id, r.miner_id`, id)
	if err != nil {
		return nil, err
	}
	var out []CommandPart
	var node, miner string
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&node, &seq, &miner}, func() error {
		if len(out) == 0 || out[len(out)-1].NodeID != node {
			out = append(out, CommandPart{NodeID: node, Seq: uint64(seq)})
		}
		p := &out[len(out)-1]
		p.MinerIDs = append(p.MinerIDs, miner)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parts: %w", err)
	}
	return out, nil
}

// ActiveOrgCommands returns the ids of org's commands with a miner still lacking a final result.
func (s *Store) ActiveOrgCommands(org string) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT command_id FROM org_commands WHERE org_id = $1 AND active ORDER BY command_id`, org)
	if err != nil {
		return nil, fmt.Errorf("active commands of org %s: %w", org, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("active commands of org %s: %w", org, err)
	}
	return ids, nil
}

// SetPartSeq records the seq the node's grain queued its part of a command under.
func (s *Store) SetPartSeq(commandID, node string, seq uint64) error {
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `UPDATE command_parts SET seq = $3 WHERE command_id = $1 AND node_id = $2`, commandID, node, int64(seq)); err != nil {
		return fmt.Errorf("part of %s on %s: seq %d: %w", commandID, node, seq, err)
	}
	return nil
}

// Part returns the node's part of an org command; ok=false when the command is not an org command or does
// not name the node (a command issued to the node directly).
func (s *Store) Part(commandID, node string) (CommandPart, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT p.seq, r.miner_id FROM command_parts p
		JOIN command_results r ON r.command_id = p.command_id AND r.node_id = p.node_id
		WHERE p.command_id = $1 AND p.node_id = $2 ORDER BY r.miner_id`, commandID, node)
	if err != nil {
		return CommandPart{}, false, fmt.Errorf("part of %s on %s: %w", commandID, node, err)
	}
	p := CommandPart{NodeID: node}
	var seq int64
	var miner string
	if _, err := pgx.ForEachRow(rows, []any{&seq, &miner}, func() error {
		p.Seq = uint64(seq)
		p.MinerIDs = append(p.MinerIDs, miner)
		return nil
	}); err != nil {
		return CommandPart{}, false, fmt.Errorf("part of %s on %s: %w", commandID, node, err)
	}
	return p, len(p.MinerIDs) > 0, nil
}

// OpenMiners returns the miners of a command without a final result.
func (s *Store) OpenMiners(commandID string) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT miner_id FROM command_results WHERE command_id = $1 AND NOT final ORDER BY miner_id`, commandID)
	if err != nil {
		return nil, fmt.Errorf("open miners of %s: %w", commandID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("open miners of %s: %w", commandID, err)
	}
	return ids, nil
}

// MinerCommands returns the org commands naming a miner: only those without a final result for it when
// open, else every one; commandID, when set, narrows to that command.
func (s *Store) MinerCommands(miner, commandID string, open bool) ([]MinerCommand, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT r.command_id, r.node_id, r.code, r.final, r.message, r.started_at_ms, r.finished_at_ms,
			o.created_at_ms, o.deadline_ms
		FROM command_results r JOIN org_commands o ON o.command_id = r.command_id
		WHERE r.miner_id = $1 AND ($2 = '' OR r.command_id = $2) AND (NOT $3 OR NOT r.final) ORDER BY r.command_id`, miner, commandID, open)
	if err != nil {
		return nil, fmt.Errorf("commands of miner %s: %w", miner, err)
	}
	var out []MinerCommand
	var c MinerCommand
	var code int32
	var msg string
	var started, finished, created, deadline int64
	if _, err := pgx.ForEachRow(rows, []any{&c.CommandID, &c.NodeID, &code, &c.Final, &msg, &started, &finished, &created, &deadline}, func() error {
		c.Result = &pb.MinerResult{MinerId: miner, Code: pb.ResultCode(code), Message: msg, StartedAtUnixMs: started, FinishedAtUnixMs: finished}
		c.Created, c.Deadline = time.UnixMilli(created), time.UnixMilli(deadline)
		out = append(out, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("commands of miner %s: %w", miner, err)
	}
	return out, nil
}

// PutMinerResult writes a miner's result of an org command unless the stored one is final already
// (applied=false then). When r is final and it was the command's last open miner, the same transaction
// writes the finished record (results merged, status by settle) and marks the command inactive
// (finished=true).
func (s *Store) PutMinerResult(commandID string, r *pb.MinerResult, final bool, settle func(*pb.CommandRecord) bool) (applied, finished bool, err error) {
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE command_results SET code = $3, final = $4, message = $5, started_at_ms = $6, finished_at_ms = $7
			WHERE command_id = $1 AND miner_id = $2 AND NOT final`, commandID, r.GetMinerId(), int32(r.GetCode()), final, r.GetMessage(),
			r.GetStartedAtUnixMs(), r.GetFinishedAtUnixMs())
		if err != nil {
			return err
		}
		applied = tag.RowsAffected() == 1
		if !applied || !final {
			return nil
		}
		var open int32
		if err := tx.QueryRow(ctx, `UPDATE org_commands SET open_miners = open_miners - 1 WHERE command_id = $1 RETURNING open_miners`,
			commandID).Scan(&open); err != nil {
			return fmt.Errorf("count open miners: %w", err)
		}
		if open > 0 {
			return nil
		}
		var v []byte
		if err := tx.QueryRow(ctx, `SELECT record FROM commands WHERE command_id = $1`, commandID).Scan(&v); err != nil {
			return err
		}
		rec := &pb.CommandRecord{}
		if err := proto.Unmarshal(v, rec); err != nil {
			return fmt.Errorf("decode command record: %w", err)
		}
		if err := mergeResults(ctx, tx, rec); err != nil {
			return err
		}
		if settle != nil {
			settle(rec)
		}
		if v, err = marshal(rec); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE commands SET record = $2, active = false WHERE command_id = $1`, commandID, v); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE org_commands SET active = false WHERE command_id = $1`, commandID)
		finished = true
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("result of %s for %s: %w", commandID, r.GetMinerId(), err)
	}
	return applied, finished, nil
}

// MinerTelemetry returns a miner's latest sample; store.ErrNotFound when there is none.
func (s *Store) MinerTelemetry(miner string) (*pb.Telemetry, error) {
	t := &pb.Telemetry{}
	if err := s.getProto(t, "telemetry of "+miner, `SELECT record FROM telemetry_latest WHERE miner_id = $1`, miner); err != nil {
		return nil, err
	}
	return t, nil
}

// OrgCommandResults counts an org command's result rows by code (tests and tools).
func (s *Store) OrgCommandResults(commandID string) (map[pb.ResultCode]int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT code FROM command_results WHERE command_id = $1`, commandID)
	if err != nil {
		return nil, fmt.Errorf("results of %s: %w", commandID, err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("results of %s: %w", commandID, err)
	}
	out := map[pb.ResultCode]int{}
	for _, c := range codes {
		out[pb.ResultCode(c)]++
	}
	return out, nil
}

// OverdueOrgs lists the orgs with a command still open past its deadline.
func (s *Store) OverdueOrgs(now time.Time) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT org_id FROM org_commands WHERE active AND deadline_ms <= $1 ORDER BY org_id`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("overdue orgs: %w", err)
	}
	orgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("overdue orgs: %w", err)
	}
	return orgs, nil
}
