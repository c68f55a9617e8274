package pgstore

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
)

// Telemetry history: table telemetry_history, range-partitioned by observed_at into one partition per UTC
// day, named telemetry_history_pYYYYMMDD. EnsureHistoryPartitions creates them ahead; ApplyRetention drops
// whole partitions older than the retention (cheap: no row-by-row delete) and trims the default partition.

const dayFmt = "20060102"

func partitionName(day time.Time) string { return "telemetry_history_p" + day.UTC().Format(dayFmt) }

func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// EnsureHistoryPartitions creates the daily partitions from the day of from through
// Config.HistoryPartitionsAhead days after now. Idempotent; safe to run from every member at once
// (retention.go).
func (s *Store) EnsureHistoryPartitions(from, now time.Time) error {
	_, err := s.CreateHistoryPartitions(from, dayStart(now).AddDate(0, 0, s.cfg.HistoryPartitionsAhead))
	return err
}

// AppendHistory writes samples to the history (one transaction). node names the reporting node.
func (s *Store) AppendHistory(node string, samples []*pb.Telemetry) error {
	if len(samples) == 0 {
		return nil
	}
	rows, err := historyRows(node, samples)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"telemetry_history"}, []string{"miner_id", "node_id", "observed_at", "record"},
		pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("append %d history samples: %w", len(samples), err)
	}
	return nil
}

// History returns miner's samples with from <= observed_at < to, oldest first, at most limit (0: 10,000).
func (s *Store) History(miner string, from, to time.Time, limit int) ([]*pb.Telemetry, error) {
	if limit <= 0 {
		limit = 10_000
	}
	out, err := queryProtos(s, func() *pb.Telemetry { return &pb.Telemetry{} },
		`SELECT record FROM telemetry_history WHERE miner_id = $1 AND observed_at >= $2 AND observed_at < $3 ORDER BY observed_at LIMIT $4`,
		miner, from.UTC(), to.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", miner, err)
	}
	return out, nil
}

// HistoryPartitions lists the daily partitions, oldest first.
func (s *Store) HistoryPartitions() ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'telemetry_history' AND c.relname LIKE 'telemetry_history_p%' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("history partitions: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("history partitions: %w", err)
	}
	return out, nil
}

// ApplyRetention drops the daily partitions that end at or before now-keep, and deletes default-partition
// rows older than that. It returns the partitions this call dropped (one another member dropped first is
// not an error and not listed).
func (s *Store) ApplyRetention(now time.Time, keep time.Duration) ([]string, error) {
	if keep <= 0 {
		return nil, fmt.Errorf("history retention %s must be positive", keep)
	}
	cut := now.Add(-keep).UTC()
	parts, err := s.HistoryPartitions()
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range parts {
		day, err := time.Parse(dayFmt, strings.TrimPrefix(p, "telemetry_history_p"))
		if err != nil {
			continue // not ours
		}
		if day.AddDate(0, 0, 1).After(cut) {
			continue
		}
		gone, err := s.dropHistoryPartition(p)
		if err != nil {
			return dropped, fmt.Errorf("drop history partition %s: %w", p, err)
		}
		if gone {
			dropped = append(dropped, p)
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM telemetry_history_default WHERE observed_at < $1`, cut); err != nil {
		return dropped, fmt.Errorf("trim default history partition: %w", err)
	}
	if len(dropped) > 0 {
		s.log.Info("history retention dropped partitions", slog.Int("count", len(dropped)), slog.Time("before", cut))
	}
	return dropped, nil
}

// historyCount counts stored samples (tests).
func (s *Store) historyCount(miner string) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM telemetry_history WHERE miner_id = $1`, miner).Scan(&n)
	return n, err
}

// historyRows are samples as telemetry_history rows for CopyFrom.
func historyRows(node string, samples []*pb.Telemetry) ([][]any, error) {
	rows := make([][]any, 0, len(samples))
	for _, t := range samples {
		if err := store.ValidID(t.GetMinerId()); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		v, err := marshal(t)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", t.GetMinerId(), err)
		}
		rows = append(rows, []any{t.GetMinerId(), node, time.UnixMilli(t.GetObservedAtUnixMs()).UTC(), v})
	}
	return rows, nil
}
