package credentials

import "errors"

// Sentinel errors. Every error the vault returns wraps one of them (or a messages/sealing sentinel for a
// malformed key, binding or envelope), with the device, purpose and node at fault, never with a plaintext.
var (
	// ErrUnknownDevice: the vault holds nothing for this device.
	ErrUnknownDevice = errors.New("no credentials for device")
	// ErrUnknownCredential: the device has no credential for this purpose.
	ErrUnknownCredential = errors.New("no credential for purpose")
	// ErrWrongOrg: the device, or a node key, belongs to another org.
	ErrWrongOrg = errors.New("device or node of another org")
	// ErrNodeRevoked: the node was revoked; nothing is sealed to it, it receives no envelope, it may not
	// re-seal or rotate.
	ErrNodeRevoked = errors.New("node revoked")
	// ErrNotOwner: the node does not own the device (per the vault's owner set).
	ErrNotOwner = errors.New("node does not own the device")
	// ErrOwnersMismatch: a Put names another owner set (ids or credential keys) than the device's; change
	// owners with Transfer.
	ErrOwnersMismatch = errors.New("owners differ from the device's owners")
	// ErrInvalidOwners: the owner list is empty, repeats a node, or holds a malformed node key.
	ErrInvalidOwners = errors.New("invalid owner list")
	// ErrTransferPending: a transfer is in progress for the device; finish or cancel it first.
	ErrTransferPending = errors.New("transfer pending")
	// ErrNoTransfer: no transfer is in progress for the device.
	ErrNoTransfer = errors.New("no transfer pending")
	// ErrResealMismatch: the uploaded envelopes are not exactly the ones the workflow needs (missing, extra,
	// duplicated, for another device, purpose or node, or sealed to a stale key).
	ErrResealMismatch = errors.New("uploaded envelopes do not match the workflow")
	// ErrNothingStaged: CompleteRotation was given no envelopes, but no new secret has been put since the
	// revocation, so there is nothing to confirm.
	ErrNothingStaged = errors.New("no new secret staged for rotation")
	// ErrInvalidConfig: the vault configuration is unusable.
	ErrInvalidConfig = errors.New("invalid credential vault config")
	// ErrCorruptRecord: a stored record cannot be decoded.
	ErrCorruptRecord = errors.New("corrupt credential record")
)

// errReadOnly: a write inside View (a bug in this package, never an operator's error).
var errReadOnly = errors.New("credential store: write in a read-only transaction")
