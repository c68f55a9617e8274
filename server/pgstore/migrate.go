package pgstore

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the pg_advisory_xact_lock key that serializes members migrating at once.
const migrationLock = 0x68617368666c6565 // "hashflee"

// Migration is one forward-only schema step, migrations/NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
	Sum     string // sha256 of SQL, hex
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	return ParseMigrations(migrationFS, "migrations")
}

// ParseMigrations reads dir/NNNN_name.sql files from fsys: versions 1..n, no gaps, no duplicates.
func ParseMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: read migrations: %w", ErrMigration, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: file %s is not named NNNN_name.sql", ErrMigration, name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: version %d in both %s and %s", ErrMigration, v, prev, name)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrMigration, name, err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: name, SQL: string(b), Sum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%w: versions must be 1..n without gaps; %s is number %d", ErrMigration, m.Name, i+1)
		}
	}
	return out, nil
}

// Migrate applies the migrations the database has not seen, in one transaction under an advisory
// lock so members starting together migrate once. An applied migration whose checksum differs from the
// binary's is refused (migrations are forward-only and never edited); a database ahead of the binary is
// accepted, since every migration is additive. It returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, ms []Migration, log *slog.Logger) ([]int, error) {
	var applied []int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			sha256     text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version, name, sha256 FROM schema_migrations ORDER BY version`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		have := map[int][2]string{}
		for rows.Next() {
			var v int
			var name, sum string
			if err := rows.Scan(&v, &name, &sum); err != nil {
				rows.Close()
				return err
			}
			have[v] = [2]string{name, sum}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		known := map[int]bool{}
		for _, m := range ms {
			known[m.Version] = true
			if h, ok := have[m.Version]; ok {
				if h[1] != m.Sum {
					return fmt.Errorf("%w: migration %d (%s) was applied with checksum %s but this binary's %s has %s; migrations are never edited, add a new one",
						ErrMigration, m.Version, h[0], short(h[1]), m.Name, short(m.Sum))
				}
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%w: apply %s: %w", ErrMigration, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Sum); err != nil {
				return fmt.Errorf("record %s: %w", m.Name, err)
			}
			applied = append(applied, m.Version)
		}
		for v, h := range have {
			if !known[v] {
				log.Warn("database has a newer schema migration than this binary; continuing (migrations are additive)",
					slog.Int("version", v), slog.String("name", h[0]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, v := range applied {
		log.Info("applied schema migration", slog.Int("version", v))
	}
	return applied, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
