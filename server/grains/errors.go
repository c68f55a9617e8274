package grains

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidCommand: an operator command that cannot be issued as asked (empty miner list, unknown action,
	// bad power target). Nothing was stored.
	ErrInvalidCommand = errors.New("invalid command")
	// ErrUnknownMiner: a miner id the org has no device for. Nothing was stored.
	ErrUnknownMiner = errors.New("unknown miner")
	// ErrUnknownCommand: no command with that id.
	ErrUnknownCommand = errors.New("unknown command")
	// ErrInvalidQuery: a view of a command that cannot be answered as asked (a page after a miner the command
	// does not name, a bad limit or status, results asked of a summary).
	ErrInvalidQuery = errors.New("invalid command query")
	// ErrIdempotencyConflict: the idempotency key was used before for a different command.
	ErrIdempotencyConflict = errors.New("idempotency key already used for a different command")
	// ErrInvalidNode: a node id that cannot be used (empty, too long, contains '/').
	ErrInvalidNode = errors.New("invalid node id")
	// ErrNotRunning: the fleet's actors are not started (or already stopped).
	ErrNotRunning = errors.New("fleet not running")
	// ErrStore: the store refused a write; the caller should retry (a node re-sends its batch).
	ErrStore = errors.New("store write failed")
	// ErrKeys: a key rotation or revocation was refused (no active key would remain, bad overlap, the key
	// file could not be written).
	ErrKeys = errors.New("command key change refused")
	// ErrUnknownKey: no command-issuance key with that id.
	ErrUnknownKey = errors.New("unknown command key")
	// ErrNotConnected: the node has no live control stream.
	ErrNotConnected = errors.New("node not connected")
	// ErrInvalidSite: a site policy or curtailment request that cannot be sent as asked (bad site name, a
	// policy that does not validate, no target, no signing key). Nothing was sent.
	ErrInvalidSite = errors.New("invalid site request")
	// ErrUnknownSite: no node is at the site, or the site has no policy yet.
	ErrUnknownSite = errors.New("unknown site")
	// ErrStalePolicy: a site policy version not above the site's current one.
	ErrStalePolicy = errors.New("site policy version is not newer than the current one")
)

// Warm-standby pairs (pairs.go).
var (
	// ErrInvalidPair: a pair declaration or request that is malformed (one member, a node twice, a standby
	// that is not a member, an id that is not valid, no devices). Nothing was stored.
	ErrInvalidPair = errors.New("invalid pair declaration")
	// ErrUnknownNode: a node id no enrollment record exists for.
	ErrUnknownNode = errors.New("unknown node")
	// ErrPairConflict: the declaration contradicts the registry (a node pending, revoked, of another org or
	// site, or already in a pair; a device in another pair or owned by a third node). Nothing was stored.
	ErrPairConflict = errors.New("pair conflicts with the registry")
	// ErrUnknownPair: no pair with that id.
	ErrUnknownPair = errors.New("unknown pair")
	// ErrPairsUnsupported: the server has no node registry or pair store (combined mode).
	ErrPairsUnsupported = errors.New("warm-standby pairs need a node registry (split mode)")
)

// UnknownMinersError names the miners a command refers to that the org does not know. It wraps
// ErrUnknownMiner.
type UnknownMinersError struct{ IDs []string }

func (e *UnknownMinersError) Error() string {
	const show = 10
	ids := e.IDs
	more := ""
	if len(ids) > show {
		more = fmt.Sprintf(" and %d more", len(ids)-show)
		ids = ids[:show]
	}
	return fmt.Sprintf("unknown miners: %s%s", strings.Join(ids, ", "), more)
}

func (e *UnknownMinersError) Unwrap() error { return ErrUnknownMiner }
