package store

import "errors"

var (
	// ErrNotFound: no record under that key (no result recorded for a seq, no ownership saved yet).
	ErrNotFound = errors.New("not found")
	// ErrSeqNotAbove: a caller tried to move the high-water mark down or keep it in place.
	ErrSeqNotAbove = errors.New("seq not above the high-water mark")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("store closed")
)
