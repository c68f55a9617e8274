package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/jackc/pgx/v5"
)

// Cluster authentication state (migration 0006): the members' shared secrets as opaque sealed rows, and
// split-mode enrollment codes and session challenges, so that Enroll, Challenge and OpenSession work
// whichever member each call reaches.

var (
	_ enroll.CodeStore      = (*Store)(nil)
	_ enroll.ChallengeStore = (*Store)(nil)
)

var (
	// ErrSecretInvalid: a secret row that cannot be stored or used (missing fields, oversized).
	ErrSecretInvalid = errors.New("invalid cluster secret row")
	// ErrSecretConflict: the secret row changed since it was read (another member updated it first).
	ErrSecretConflict = errors.New("cluster secret changed concurrently")
)

// SecretRow is one shared secret as stored: Public is what may be shown (a CA certificate, public keys),
// Sealed the private material encrypted under the key-encryption key named by KEKID. The store never sees
// the plaintext.
type SecretRow struct {
	Name    string
	KEKID   string
	Public  []byte
	Sealed  []byte
	Version int64
}

// maxSecretRowBytes bounds a row read back (a garbage row must not exhaust memory).
const maxSecretRowBytes = 1 << 20

// LoadOrCreateSecret stores candidate under candidate.Name unless a row of that name exists, and returns
// the stored row: candidate (created=true) or the row another member wrote first (created=false). It never
// overwrites a row, so members starting together all end up with the first writer's secret.
func (s *Store) LoadOrCreateSecret(candidate SecretRow) (row SecretRow, created bool, err error) {
	if candidate.Name == "" || candidate.KEKID == "" || len(candidate.Sealed) == 0 {
		return SecretRow{}, false, fmt.Errorf("load or create secret %q: name, kek id and sealed value are required: %w", candidate.Name, ErrSecretInvalid)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO cluster_secrets (name, kek_id, public, sealed) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
		candidate.Name, candidate.KEKID, nonNil(candidate.Public), candidate.Sealed)
	if err != nil {
		return SecretRow{}, false, fmt.Errorf("create secret %q: %w", candidate.Name, err)
	}
	row, err = s.Secret(candidate.Name)
	if err != nil {
		return SecretRow{}, false, err
	}
	return row, tag.RowsAffected() == 1, nil
}

// Secret returns the stored row of name; store.ErrNotFound (wrapped) when there is none.
func (s *Store) Secret(name string) (SecretRow, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	r := SecretRow{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT kek_id, public, sealed, version FROM cluster_secrets WHERE name = $1
		AND octet_length(public) + octet_length(sealed) <= $2`, name, maxSecretRowBytes).Scan(&r.KEKID, &r.Public, &r.Sealed, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		var n int
		if e := s.pool.QueryRow(ctx, `SELECT count(*) FROM cluster_secrets WHERE name = $1`, name).Scan(&n); e == nil && n > 0 {
			return SecretRow{}, fmt.Errorf("secret %q is larger than %d bytes: %w", name, maxSecretRowBytes, ErrSecretInvalid)
		}
		return SecretRow{}, fmt.Errorf("secret %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return SecretRow{}, fmt.Errorf("secret %q: %w", name, err)
	}
	return r, nil
}

// UpdateSecret replaces the row of next.Name if its version is still expectedVersion (compare-and-set) and
// returns the stored row with its new version; ErrSecretConflict when another member changed it first.
func (s *Store) UpdateSecret(next SecretRow, expectedVersion int64) (SecretRow, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var v int64
	err := s.pool.QueryRow(ctx, `UPDATE cluster_secrets SET kek_id = $2, public = $3, sealed = $4, version = version + 1, updated_at = now()
		WHERE name = $1 AND version = $5 RETURNING version`, next.Name, next.KEKID, nonNil(next.Public), next.Sealed, expectedVersion).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return SecretRow{}, fmt.Errorf("update secret %q at version %d: %w", next.Name, expectedVersion, ErrSecretConflict)
	}
	if err != nil {
		return SecretRow{}, fmt.Errorf("update secret %q: %w", next.Name, err)
	}
	next.Version = v
	return next, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ---- enrollment codes (enroll.CodeStore) ----

func unixNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// PutCode implements enroll.CodeStore.
func (s *Store) PutCode(rec enroll.CodeRecord) error {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO enroll_codes (code_id, org_id, site, created_ns, expires_ns, redeemed_ns, identity_key, finished_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code_id) DO NOTHING`,
		rec.ID, rec.OrgID, rec.Site, unixNS(rec.CreatedAt), unixNS(rec.ExpiresAt), unixNS(rec.RedeemedAt), rec.IdentityKey, unixNS(rec.FinishedAt))
	if err != nil {
		return fmt.Errorf("put enrollment code: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put enrollment code: %w", enroll.ErrCodeExists)
	}
	return nil
}

const codeColumns = `code_id, org_id, site, created_ns, expires_ns, redeemed_ns, identity_key, finished_ns`

func scanCode(row pgx.Row) (enroll.CodeRecord, error) {
	var r enroll.CodeRecord
	var created, expires, redeemed, finished int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Site, &created, &expires, &redeemed, &r.IdentityKey, &finished); err != nil {
		return enroll.CodeRecord{}, err
	}
	r.CreatedAt, r.ExpiresAt, r.RedeemedAt, r.FinishedAt = fromNS(created), fromNS(expires), fromNS(redeemed), fromNS(finished)
	return r, nil
}

// GetCode implements enroll.CodeStore.
func (s *Store) GetCode(id string) (enroll.CodeRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := scanCode(s.pool.QueryRow(ctx, `SELECT `+codeColumns+` FROM enroll_codes WHERE code_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.CodeRecord{}, fmt.Errorf("enrollment code not found: %w", enroll.ErrInvalidCode)
	}
	if err != nil {
		return enroll.CodeRecord{}, fmt.Errorf("get enrollment code: %w", err)
	}
	return r, nil
}

// UpdateCode implements enroll.CodeStore: the row is locked for the transaction, so two members redeeming
// one code at once see each other and only one wins.
func (s *Store) UpdateCode(id string, fn func(*enroll.CodeRecord) error) (enroll.CodeRecord, error) {
	var out enroll.CodeRecord
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		r, err := scanCode(tx.QueryRow(ctx, `SELECT `+codeColumns+` FROM enroll_codes WHERE code_id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("enrollment code not found: %w", enroll.ErrInvalidCode)
		}
		if err != nil {
			return err
		}
		r.IdentityKey = bytes.Clone(r.IdentityKey)
		if err := fn(&r); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE enroll_codes SET org_id = $2, site = $3, created_ns = $4, expires_ns = $5, redeemed_ns = $6,
			identity_key = $7, finished_ns = $8 WHERE code_id = $1`, id, r.OrgID, r.Site, unixNS(r.CreatedAt), unixNS(r.ExpiresAt),
			unixNS(r.RedeemedAt), r.IdentityKey, unixNS(r.FinishedAt)); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return enroll.CodeRecord{}, fmt.Errorf("update enrollment code: %w", err)
	}
	return out, nil
}

// ---- session challenges (enroll.ChallengeStore) ----

// Bounds on outstanding challenges, as enroll.MemStore's defaults.
const (
	maxChallengesPerNode = 8
	maxChallenges        = 100_000
)

// PutChallenge implements enroll.ChallengeStore: expired challenges are dropped, a node keeps at most 8
// (the oldest go), and at most 100000 are outstanding overall (enroll.ErrTooManyChallenges).
func (s *Store) PutChallenge(c enroll.Challenge, now time.Time) error {
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM enroll_challenges WHERE expires_ns <= $1`, now.UnixNano()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM enroll_challenges`).Scan(&n); err != nil {
			return err
		}
		if n >= maxChallenges {
			return fmt.Errorf("%d outstanding: %w", n, enroll.ErrTooManyChallenges)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO enroll_challenges (node_id, nonce, expires_ns) VALUES ($1, $2, $3)`,
			c.NodeID, c.Nonce, unixNS(c.ExpiresAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM enroll_challenges WHERE node_id = $1 AND n NOT IN
			(SELECT n FROM enroll_challenges WHERE node_id = $1 ORDER BY n DESC LIMIT $2)`, c.NodeID, maxChallengesPerNode)
		return err
	})
	if err != nil {
		return fmt.Errorf("put session challenge for %q: %w", c.NodeID, err)
	}
	return nil
}

// TakeChallenge implements enroll.ChallengeStore: an atomic delete-and-return, so a nonce is usable once
// across every member.
func (s *Store) TakeChallenge(nodeID string, nonce []byte) (enroll.Challenge, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	c := enroll.Challenge{NodeID: nodeID}
	var exp int64
	err := s.pool.QueryRow(ctx, `DELETE FROM enroll_challenges WHERE node_id = $1 AND nonce = $2 RETURNING nonce, expires_ns`,
		nodeID, nonce).Scan(&c.Nonce, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.Challenge{}, fmt.Errorf("node %q: %w", nodeID, enroll.ErrUnknownChallenge)
	}
	if err != nil {
		return enroll.Challenge{}, fmt.Errorf("take session challenge for %q: %w", nodeID, err)
	}
	c.ExpiresAt = fromNS(exp)
	return c, nil
}
