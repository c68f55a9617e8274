package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/jackc/pgx/v5"
)

// Load implements lease.Store.
func (s *Store) Load(pairID string) (lease.State, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	st := lease.State{PairID: pairID, LastHeartbeat: map[string]time.Time{}}
	var epoch, exp, version int64
	err := s.pool.QueryRow(ctx, `SELECT holder, epoch, expires_at_ns, member_a, member_b, version FROM leases WHERE pair_id = $1`, pairID).
		Scan(&st.Holder, &epoch, &exp, &st.Members[0], &st.Members[1], &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return lease.State{}, fmt.Errorf("load lease %s: %w", pairID, lease.ErrNotFound)
	}
	if err != nil {
		return lease.State{}, fmt.Errorf("load lease %s: %w: %w", pairID, lease.ErrStore, err)
	}
	st.Epoch, st.Version = uint64(epoch), uint64(version)
	if exp != 0 {
		st.ExpiresAt = time.Unix(0, exp)
	}
	return st, nil
}

// CompareAndSet implements lease.Store: an INSERT for version 1, otherwise an UPDATE guarded by
// "version = expectVersion", both in one transaction with the epoch ledger (lease_epochs), whose primary key
// (pair, epoch) refuses a second holder for an epoch even if two writers somehow passed the version check.
func (s *Store) CompareAndSet(pairID string, expectVersion uint64, next lease.State) error {
	if pairID == "" || next.PairID != pairID {
		return fmt.Errorf("store lease %q: state is for pair %q: %w", pairID, next.PairID, lease.ErrInvalidRequest)
	}
	if next.Version != expectVersion+1 {
		return fmt.Errorf("store lease %s: next version %d must be %d: %w", pairID, next.Version, expectVersion+1, lease.ErrInvalidRequest)
	}
	var exp int64
	if !next.ExpiresAt.IsZero() {
		exp = next.ExpiresAt.UnixNano()
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var n int64
		if expectVersion == 0 {
			tag, err := tx.Exec(ctx, `INSERT INTO leases (pair_id, holder, epoch, expires_at_ns, member_a, member_b, version)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (pair_id) DO NOTHING`,
				pairID, next.Holder, int64(next.Epoch), exp, next.Members[0], next.Members[1], int64(next.Version))
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		} else {
			tag, err := tx.Exec(ctx, `UPDATE leases SET holder = $2, epoch = $3, expires_at_ns = $4, member_a = $5, member_b = $6,
				version = $7, updated_at = now() WHERE pair_id = $1 AND version = $8`,
				pairID, next.Holder, int64(next.Epoch), exp, next.Members[0], next.Members[1], int64(next.Version), int64(expectVersion))
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		}
		if n == 0 {
			var cur int64
			_ = tx.QueryRow(ctx, `SELECT version FROM leases WHERE pair_id = $1`, pairID).Scan(&cur)
			return fmt.Errorf("version is %d, expected %d: %w", cur, expectVersion, lease.ErrConflict)
		}
		if next.Holder == "" || next.Epoch == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO lease_epochs (pair_id, epoch, holder) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			pairID, int64(next.Epoch), next.Holder); err != nil {
			return err
		}
		var holder string
		if err := tx.QueryRow(ctx, `SELECT holder FROM lease_epochs WHERE pair_id = $1 AND epoch = $2`, pairID, int64(next.Epoch)).Scan(&holder); err != nil {
			return err
		}
		if holder != next.Holder {
			return fmt.Errorf("epoch %d was issued to %s, not %s: %w: %w", next.Epoch, holder, next.Holder, ErrEpochIssued, lease.ErrConflict)
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lease.ErrConflict):
		return fmt.Errorf("store lease %s: %w", pairID, err)
	case isSerialization(err) || isUniqueViolation(err):
		return fmt.Errorf("store lease %s: %w: %w", pairID, lease.ErrConflict, err)
	default:
		return fmt.Errorf("store lease %s: %w: %w", pairID, lease.ErrStore, err)
	}
}

// EpochRecord is one issued lease epoch.
type EpochRecord struct {
	Epoch    uint64
	Holder   string
	IssuedAt time.Time
}

// IssuedEpochs returns every epoch issued for pairID, ascending (audits and tests: no epoch twice).
func (s *Store) IssuedEpochs(pairID string) ([]EpochRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT epoch, holder, issued_at FROM lease_epochs WHERE pair_id = $1 ORDER BY epoch`, pairID)
	if err != nil {
		return nil, fmt.Errorf("issued epochs of %s: %w", pairID, err)
	}
	defer rows.Close()
	var out []EpochRecord
	for rows.Next() {
		var r EpochRecord
		var e int64
		if err := rows.Scan(&e, &r.Holder, &r.IssuedAt); err != nil {
			return nil, fmt.Errorf("issued epochs of %s: %w", pairID, err)
		}
		r.Epoch = uint64(e)
		out = append(out, r)
	}
	return out, rows.Err()
}
