package artifacts

import "errors"

var (
	// ErrNoSpace: the node's disk lacks room for the artifact (plus the configured reserve).
	ErrNoSpace = errors.New("not enough free disk space for the artifact")
	// ErrChecksum: the bytes received do not hash to the sha256 the command names; they are discarded.
	ErrChecksum = errors.New("artifact checksum mismatch")
	// ErrTooLarge: the artifact exceeds the node's size limit.
	ErrTooLarge = errors.New("artifact too large")
	// ErrRefused: the cloud refused the transfer for good (not granted, not found, bad request).
	ErrRefused = errors.New("artifact transfer refused by the cloud")
	// ErrGaveUp: the transfer kept failing after every retry.
	ErrGaveUp = errors.New("artifact transfer gave up after retries")
)
