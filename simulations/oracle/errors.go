package oracle

import "errors"

// ErrViolation is wrapped by Violations.Err: a history broke at least one invariant.
var ErrViolation = errors.New("invariant violated")
