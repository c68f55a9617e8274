package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Telemetry-history partition maintenance, safe for every member to run at once: each partition created
// or dropped is one transaction under the historyLock advisory lock, which re-checks the catalog after
// taking the lock, so two members serialize and the second finds the work done (created or dropped
// nothing, no error). A partition for a day whose rows already sit in the default partition (a member
// that did not create it in time) is created by moving those rows into it.

// historyLock is the pg_advisory_xact_lock key that serializes partition changes.
const historyLock = migrationLock + 1

// CreateHistoryPartitions creates the daily partitions for the days of from through through (UTC),
// returning the ones this call created (oldest first).
func (s *Store) CreateHistoryPartitions(from, through time.Time) ([]string, error) {
	var created []string
	for d := dayStart(from); !d.After(dayStart(through)); d = d.AddDate(0, 0, 1) {
		made, err := s.createHistoryPartition(d)
		if err != nil {
			return created, fmt.Errorf("history partition %s: %w", partitionName(d), err)
		}
		if made {
			created = append(created, partitionName(d))
		}
	}
	return created, nil
}

func (s *Store) createHistoryPartition(day time.Time) (bool, error) {
	name := partitionName(day)
	start, end := day, day.AddDate(0, 0, 1)
	made := false
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		made = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(historyLock)); err != nil {
			return err
		}
		exists, err := relationExists(ctx, tx, name)
		if err != nil || exists {
			return err
		}
		// Rows of that day in the default partition would make the new partition's bounds overlap it. Writes
		// wait (reads go on) while the rows move, so none lands in the default partition meanwhile.
		if _, err := tx.Exec(ctx, `LOCK TABLE telemetry_history IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var stray bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM telemetry_history_default WHERE observed_at >= $1 AND observed_at < $2)`,
			start, end).Scan(&stray); err != nil {
			return err
		}
		if stray {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE history_moving (LIKE telemetry_history) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM telemetry_history_default WHERE observed_at >= $1 AND observed_at < $2 RETURNING *)
				INSERT INTO history_moving SELECT * FROM moved`, start, end); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF telemetry_history FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{name}.Sanitize(), start.Format(time.RFC3339), end.Format(time.RFC3339))); err != nil {
			return err
		}
		if stray {
			tag, err := tx.Exec(ctx, `INSERT INTO telemetry_history SELECT * FROM history_moving`)
			if err != nil {
				return err
			}
			s.log.Info("history partition created late: rows moved out of the default partition",
				slog.String("partition", name), slog.Int64("rows", tag.RowsAffected()))
		}
		made = true
		return nil
	})
	return made, err
}

// dropHistoryPartition drops one daily partition; false when it was gone already (another member dropped
// it first).
func (s *Store) dropHistoryPartition(name string) (bool, error) {
	dropped := false
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		dropped = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(historyLock)); err != nil {
			return err
		}
		exists, err := relationExists(ctx, tx, name)
		if err != nil || !exists {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
		dropped = true
		return nil
	})
	return dropped, err
}

// relationExists reads pg_class with the statement's snapshot (taken after the advisory lock), not the
// backend's catalog cache (to_regclass), which may not have seen another member's drop yet.
func relationExists(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var exists bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = $1 AND n.nspname = current_schema())`, name).Scan(&exists)
	return exists, err
}
