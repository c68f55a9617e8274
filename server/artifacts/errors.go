package artifacts

import "errors"

var (
	// ErrNotFound: no artifact with that sha256.
	ErrNotFound = errors.New("artifact not found")
	// ErrTooLarge: the artifact exceeds the configured size limit.
	ErrTooLarge = errors.New("artifact too large")
	// ErrChecksum: the bytes do not hash to the sha256 named.
	ErrChecksum = errors.New("artifact checksum mismatch")
	// ErrBadSHA: not a lower-case hex sha256.
	ErrBadSHA = errors.New("not a sha256 (64 lower-case hex digits)")
	// ErrNotGranted: no command issued to this node names this artifact.
	ErrNotGranted = errors.New("no command issued to this node names this artifact")
	// ErrBusy: the node already runs its maximum of concurrent transfers.
	ErrBusy = errors.New("too many concurrent artifact transfers for this node")
)
