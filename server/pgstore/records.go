package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
)

// Enrollment records, security events and orgs: the same methods the Badger store has for them
// (server/store/records.go), on tables nodes, security_events and orgs.

// PutNodeRecord creates a node record; store.ErrExists if the node id is taken.
func (s *Store) PutNodeRecord(rec *pb.NodeRecord) error {
	id := rec.GetNodeId()
	if err := store.ValidNodeID(id); err != nil {
		return fmt.Errorf("put node record: %w", err)
	}
	v, err := marshal(rec)
	if err != nil {
		return fmt.Errorf("put node record %s: %w", id, err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO nodes (node_id, org_id, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, rec.GetOrgId(), v)
	if err != nil {
		return fmt.Errorf("put node record %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put node record %s: node %s: %w", id, id, store.ErrExists)
	}
	return nil
}

// NodeRecord returns a node record; store.ErrNotFound when there is none.
func (s *Store) NodeRecord(id string) (*pb.NodeRecord, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("node record: %w", err)
	}
	rec := &pb.NodeRecord{}
	if err := s.getProto(rec, "node "+id, `SELECT record FROM nodes WHERE node_id = $1`, id); err != nil {
		return nil, err
	}
	return rec, nil
}

// NodeRecords returns every node record, ordered by node id.
func (s *Store) NodeRecords() ([]*pb.NodeRecord, error) {
	out, err := queryProtos(s, func() *pb.NodeRecord { return &pb.NodeRecord{} }, `SELECT record FROM nodes ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("node records: %w", err)
	}
	return out, nil
}

// UpdateNodeRecord atomically loads a node record (row locked), applies fn and stores the result unless fn
// fails. It returns the stored record; store.ErrNotFound when there is none.
func (s *Store) UpdateNodeRecord(id string, fn func(*pb.NodeRecord) error) (*pb.NodeRecord, error) {
	if err := store.ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("update node record: %w", err)
	}
	rec := &pb.NodeRecord{}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var b []byte
		err := tx.QueryRow(ctx, `SELECT record FROM nodes WHERE node_id = $1 FOR UPDATE`, id).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("node %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := proto.Unmarshal(b, rec); err != nil {
			return fmt.Errorf("decode node record: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
		v, err := marshal(rec)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE nodes SET record = $2, org_id = $3 WHERE node_id = $1`, id, v, rec.GetOrgId())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update node record %s: %w", id, err)
	}
	return rec, nil
}

// AppendSecurityEvent appends e to the security event log.
func (s *Store) AppendSecurityEvent(e store.SecurityEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append security event: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO security_events (at, event) VALUES ($1, $2)`, e.At.UTC(), b); err != nil {
		return fmt.Errorf("append security event: %w", err)
	}
	return nil
}

// maxSecurityEvents bounds one SecurityEvents read.
const maxSecurityEvents = 10_000

// SecurityEvents returns the newest limit security events, oldest first.
func (s *Store) SecurityEvents(limit int) ([]store.SecurityEvent, error) {
	if limit <= 0 || limit > maxSecurityEvents {
		limit = maxSecurityEvents
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT event FROM (SELECT event, at, n FROM security_events ORDER BY at DESC, n DESC LIMIT $1) t ORDER BY at, n`, limit)
	if err != nil {
		return nil, fmt.Errorf("security events: %w", err)
	}
	defer rows.Close()
	var out []store.SecurityEvent
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("security events: %w", err)
		}
		var e store.SecurityEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("security event: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Org is one tenant of a managed cloud.
type Org struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// PutOrg creates or renames an org.
func (s *Store) PutOrg(id, name string) error {
	if err := store.ValidNodeID(id); err != nil {
		return fmt.Errorf("put org: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO orgs (org_id, name) VALUES ($1, $2) ON CONFLICT (org_id) DO UPDATE SET name = EXCLUDED.name`, id, name); err != nil {
		return fmt.Errorf("put org %s: %w", id, err)
	}
	return nil
}

// Orgs lists every org, ordered by id.
func (s *Store) Orgs() ([]Org, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT org_id, name, created_at FROM orgs ORDER BY org_id`)
	if err != nil {
		return nil, fmt.Errorf("orgs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Org, error) {
		var o Org
		err := r.Scan(&o.ID, &o.Name, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("orgs: %w", err)
	}
	return out, nil
}
