package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
)

// Warm-standby pair declarations: table pairs (the record as JSON), and the claims pair_members and
// pair_devices, whose primary keys make a node or device belong to at most one pair. PutPair rewrites a
// pair's claims in the transaction that writes its record: of two declarations naming one device, the
// second blocks on the first's claim row and, once that commits, finds it taken (ErrExists).

var _ store.PairStore = (*Store)(nil)

// PutPair implements store.PairStore.
func (s *Store) PutPair(rec *store.PairRecord) error {
	if err := store.ValidPairRecord(rec); err != nil {
		return fmt.Errorf("put pair: %w", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO pairs (pair_id, org_id, record) VALUES ($1, $2, $3)
			ON CONFLICT (pair_id) DO UPDATE SET org_id = EXCLUDED.org_id, record = EXCLUDED.record`, rec.ID, rec.OrgID, b); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pair_members WHERE pair_id = $1`, rec.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pair_devices WHERE pair_id = $1`, rec.ID); err != nil {
			return err
		}
		// Claims in one order (members, then devices, each sorted), so two declarations sharing several
		// devices wait on each other rather than deadlock.
		if err := claim(ctx, tx, "pair_members", "node_id", "node", slices.Sorted(slices.Values(rec.Members[:])), rec.ID); err != nil {
			return err
		}
		if err := claim(ctx, tx, "pair_devices", "miner_id", "device", slices.Sorted(slices.Values(rec.Devices)), rec.ID); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put pair %s: %w", rec.ID, err)
	}
	return nil
}

// claim inserts (id, pair) into table for every id of ids (sorted) in one statement; ErrExists naming a
// holder when another pair has one of them. table and col are constants of this file.
func claim(ctx context.Context, tx pgx.Tx, table, col, what string, ids []string, pair string) error {
	if len(ids) == 0 {
		return nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+col+`, pair_id) SELECT id, $2 FROM unnest($1::text[]) WITH ORDINALITY AS u (id, n)
		ORDER BY n ON CONFLICT DO NOTHING`, ids, pair)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == int64(len(ids)) {
		return nil
	}
	var id, holder string
	if err := tx.QueryRow(ctx, `SELECT `+col+`, pair_id FROM `+table+` WHERE `+col+` = ANY($1) AND pair_id <> $2 ORDER BY 1 LIMIT 1`,
		ids, pair).Scan(&id, &holder); err != nil {
		return fmt.Errorf("%s claimed by another pair: %w", what, err)
	}
	return fmt.Errorf("%s %s is already in pair %s: %w", what, id, holder, store.ErrExists)
}

// DeletePair implements store.PairStore (its claims go with it).
func (s *Store) DeletePair(id string) error {
	if err := store.ValidNodeID(id); err != nil {
		return fmt.Errorf("delete pair: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM pairs WHERE pair_id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete pair %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete pair %s: pair %s: %w", id, id, store.ErrNotFound)
	}
	return nil
}

// Pairs implements store.PairStore.
func (s *Store) Pairs() ([]*store.PairRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT record FROM pairs ORDER BY pair_id`)
	if err != nil {
		return nil, fmt.Errorf("pairs: %w", err)
	}
	defer rows.Close()
	var out []*store.PairRecord
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("pairs: %w", err)
		}
		var r store.PairRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("pair record: %w", err)
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pairs: %w", err)
	}
	return out, nil
}

// PairMembers returns a pair's two member nodes (a Lease grain activating for a pair whose lease was never
// stored, server/cloudcluster); ErrNotFound when no such pair is declared.
func (s *Store) PairMembers(pairID string) ([2]string, error) {
	var members [2]string
	if err := store.ValidNodeID(pairID); err != nil {
		return members, fmt.Errorf("pair members: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT record -> 'members' FROM pairs WHERE pair_id = $1`, pairID).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return members, fmt.Errorf("pair %s: %w", pairID, store.ErrNotFound)
	}
	if err != nil {
		return members, fmt.Errorf("pair members of %s: %w", pairID, err)
	}
	if err := json.Unmarshal(b, &members); err != nil {
		return members, fmt.Errorf("pair members of %s: %w", pairID, err)
	}
	return members, nil
}
