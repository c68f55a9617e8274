package history

import "errors"

var (
	// ErrClosed: the History was closed.
	ErrClosed = errors.New("history closed")
	// ErrInvalidID: a miner or group id that cannot be a key part (empty, longer than MaxIDLen, or with a
	// control character).
	ErrInvalidID = errors.New("invalid id")
	// ErrInvalidRange: a query whose end is not after its start, or whose step is negative.
	ErrInvalidRange = errors.New("invalid time range")
	// ErrTooManyPoints: a query that would return more than Config.MaxPoints points; ask for a larger step.
	ErrTooManyPoints = errors.New("too many points")
	// ErrTooManyMiners: an Aggregate over more miners than Config.MaxAggregateMiners; register a group instead.
	ErrTooManyMiners = errors.New("too many miners")
	// ErrUnknownGroup: a group that SetGroups never registered.
	ErrUnknownGroup = errors.New("unknown group")
	// ErrInvalidFn: an aggregate function other than sum, avg or max.
	ErrInvalidFn = errors.New("invalid aggregate function")
	// ErrFormat: the store holds history written in a format this version cannot read.
	ErrFormat = errors.New("unsupported history format")
	// ErrCorrupt: a stored record that cannot be decoded.
	ErrCorrupt = errors.New("corrupt history record")
)
