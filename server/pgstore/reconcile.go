package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
)

var _ store.Reconciliation = (*Store)(nil)

// ApplyLocalCommands implements store.Reconciliation: one transaction; the watermark row is locked first so
// two members applying one node's backfill serialize.
func (s *Store) ApplyLocalCommands(node string, cmds []*pb.LocalCommand, audit func(*pb.LocalCommand) *pb.AuditRecord) (int, *pb.HLC, error) {
	if err := store.ValidNodeID(node); err != nil {
		return 0, nil, fmt.Errorf("apply local commands: %w", err)
	}
	fresh := 0
	var wm *pb.HLC
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		fresh, wm = 0, nil
		if _, err := tx.Exec(ctx, `INSERT INTO local_watermarks (node_id, hlc) VALUES ($1, '') ON CONFLICT DO NOTHING`, node); err != nil {
			return err
		}
		var cur []byte
		if err := tx.QueryRow(ctx, `SELECT hlc FROM local_watermarks WHERE node_id = $1 FOR UPDATE`, node).Scan(&cur); err != nil {
			return err
		}
		var before *pb.HLC
		if len(cur) > 0 {
			before = &pb.HLC{}
			if err := proto.Unmarshal(cur, before); err != nil {
				return fmt.Errorf("decode watermark: %w", err)
			}
		}
		wm = before
		for _, c := range cmds {
			if err := store.ValidID(c.GetCommandId()); err != nil {
				return fmt.Errorf("local command id: %w", err)
			}
			if store.HLCAfter(c.GetHlc(), wm) {
				wm = c.GetHlc()
			}
			v, err := marshal(c)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO local_commands (node_id, command_id, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				node, c.GetCommandId(), v)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if rec := audit(c); rec != nil {
				rec.NodeId = node
				av, err := marshal(rec)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO audit (node_id, at_ms, record) VALUES ($1, $2, $3)`, node, max(rec.GetAtUnixMs(), 0), av); err != nil {
					return err
				}
			}
			fresh++
		}
		if wm == nil {
			_, err := tx.Exec(ctx, `DELETE FROM local_watermarks WHERE node_id = $1 AND hlc = ''`, node)
			return err
		}
		v, err := marshal(wm)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE local_watermarks SET hlc = $2 WHERE node_id = $1`, node, v)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("apply %d local commands of %s: %w", len(cmds), node, err)
	}
	return fresh, wm, nil
}

// LocalWatermark implements store.Reconciliation.
func (s *Store) LocalWatermark(node string) (*pb.HLC, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("local watermark: %w", err)
	}
	h := &pb.HLC{}
	err := s.getProto(h, "local watermark of "+node, `SELECT hlc FROM local_watermarks WHERE node_id = $1 AND hlc <> ''`, node)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return h, nil
}

// LocalCommandsOf implements store.Reconciliation.
func (s *Store) LocalCommandsOf(node string) ([]*pb.LocalCommand, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("local commands: %w", err)
	}
	out, err := queryProtos(s, func() *pb.LocalCommand { return &pb.LocalCommand{} },
		`SELECT record FROM local_commands WHERE node_id = $1 ORDER BY command_id`, node)
	if err != nil {
		return nil, fmt.Errorf("local commands of %s: %w", node, err)
	}
	return out, nil
}

// CreateConflict implements store.Reconciliation.
func (s *Store) CreateConflict(c *pb.Conflict) (bool, error) {
	if err := store.ValidNodeID(c.GetConflictId()); err != nil {
		return false, fmt.Errorf("create conflict: %w", err)
	}
	v, err := marshal(c)
	if err != nil {
		return false, fmt.Errorf("create conflict %s: %w", c.GetConflictId(), err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO conflicts (conflict_id, status, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		c.GetConflictId(), c.GetStatus(), v)
	if err != nil {
		return false, fmt.Errorf("create conflict %s: %w", c.GetConflictId(), err)
	}
	return tag.RowsAffected() == 1, nil
}

// Conflict implements store.Reconciliation.
func (s *Store) Conflict(id string) (*pb.Conflict, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("conflict: %w", err)
	}
	c := &pb.Conflict{}
	if err := s.getProto(c, "conflict "+id, `SELECT record FROM conflicts WHERE conflict_id = $1`, id); err != nil {
		return nil, err
	}
	return c, nil
}

// Conflicts implements store.Reconciliation.
func (s *Store) Conflicts(status string) ([]*pb.Conflict, error) {
	out, err := queryProtos(s, func() *pb.Conflict { return &pb.Conflict{} },
		`SELECT record FROM conflicts WHERE $1 = '' OR status = $1 ORDER BY conflict_id`, status)
	if err != nil {
		return nil, fmt.Errorf("conflicts: %w", err)
	}
	return out, nil
}

// ResolveConflict implements store.Reconciliation (the row is locked while fn runs).
func (s *Store) ResolveConflict(id string, fn func(*pb.Conflict) error) (*pb.Conflict, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("resolve conflict: %w", err)
	}
	var out *pb.Conflict
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var b []byte
		err := tx.QueryRow(ctx, `SELECT record FROM conflicts WHERE conflict_id = $1 FOR UPDATE`, id).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c := &pb.Conflict{}
		if err := proto.Unmarshal(b, c); err != nil {
			return fmt.Errorf("decode conflict: %w", err)
		}
		if c.GetStatus() != store.ConflictOpen {
			out = c
			return fmt.Errorf("conflict is %s already: %w", c.GetStatus(), store.ErrExists)
		}
		if err := fn(c); err != nil {
			return err
		}
		out = c
		v, err := marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE conflicts SET status = $2, record = $3 WHERE conflict_id = $1`, id, c.GetStatus(), v)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("resolve conflict %s: %w", id, err)
	}
	return out, nil
}
