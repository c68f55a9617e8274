package pgstore

import "errors"

var (
	// ErrConfig: the configuration cannot work (no DSN, bad pool size).
	ErrConfig = errors.New("invalid postgres store config")
	// ErrMigration: the database's migration history does not match this binary's migrations (a migration
	// file was edited after it was applied, or applied ones are missing from the binary).
	ErrMigration = errors.New("postgres schema migration")
	// ErrSeqTaken: a command was already sent to the node under this seq (another activation of the node's
	// grain allocated it first). Wraps store.ErrExists.
	ErrSeqTaken = errors.New("command seq already sent to the node")
	// ErrEpochIssued: the lease epoch was already issued to another holder. Wraps lease.ErrConflict.
	ErrEpochIssued = errors.New("lease epoch already issued to another holder")
)
