package gate

import "errors"

var (
	// ErrBadSignature: the command's signature does not verify (Verifier → REFUSED_SIGNATURE).
	ErrBadSignature = errors.New("bad command signature")
	// ErrUnknownKey: the key id is unknown, retired or revoked (Verifier → REFUSED_KEY).
	ErrUnknownKey = errors.New("unknown, retired or revoked command key")
	// ErrWrongEpoch: the command's lease epoch is not the node's (EpochCheck → REFUSED_EPOCH).
	ErrWrongEpoch = errors.New("lease epoch is not this node's")
	// ErrFenced: the node may not write to miners now (EpochCheck → FENCED): a pair member that is the
	// standby, whose lease lapsed, or that is handing it over.
	ErrFenced = errors.New("node fenced: no miner writes")
	// ErrNoVerifier: the gate was configured without a Verifier.
	ErrNoVerifier = errors.New("no command verifier configured")
)
