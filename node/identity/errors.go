package identity

import (
	"errors"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

var (
	// ErrNotFound: the directory holds no identity yet (run Create, or LoadOrCreate).
	ErrNotFound = errors.New("no node identity")
	// ErrExists: Create found key files already there; it never overwrites a key.
	ErrExists = errors.New("node identity already exists")
	// ErrIncomplete: some key files exist and others do not (a crash during first run, or a partial restore).
	ErrIncomplete = errors.New("incomplete node identity")
	// ErrInsecurePermissions: the directory or a file is accessible by group or others, or is not a regular
	// file/directory. It is secretfile.ErrInsecurePermissions, so either matches with errors.Is.
	ErrInsecurePermissions = secretfile.ErrInsecurePermissions
	// ErrCorruptKey: a key file cannot be decoded, holds the wrong kind of key, or is too large to be a key
	// (such an error also matches secretfile.ErrTooLarge).
	ErrCorruptKey = errors.New("corrupt key file")
	// ErrNotEnrolled: there is no enrollment state yet.
	ErrNotEnrolled = errors.New("node not enrolled")
	// ErrInvalidEnrollment: the enrollment state is missing a field or malformed.
	ErrInvalidEnrollment = errors.New("invalid enrollment state")
)
