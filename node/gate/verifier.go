package gate

import "github.com/hashfleet/hashfleet/messages/pb"

// Verifier checks a command's authenticity: its signature over (actor, node_id, monotonic_seq, key_id,
// lease_epoch, idempotency_key, payload) by a key the node trusts. It returns nil for an authentic command, or
// an error wrapping ErrBadSignature (→ REFUSED_SIGNATURE) or ErrUnknownKey (→ REFUSED_KEY). KeyringVerifier is
// the ed25519 implementation with per-org keys and rotation.
type Verifier interface {
	Verify(cmd *pb.ControlCommand) error
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(*pb.ControlCommand) error

// Verify implements Verifier.
func (f VerifierFunc) Verify(cmd *pb.ControlCommand) error { return f(cmd) }

// InProcessVerifier accepts every command without checking a signature. No mode uses it any more (combined
// mode verifies with the KeyringVerifier like split mode); it stays for tests of the gate's other checks.
// Never use it for a node that dials over a network: seq, node id and ownership are still checked, but anyone
// who reaches the gateway stream could issue commands.
type InProcessVerifier struct{}

// Verify implements Verifier: always nil.
func (InProcessVerifier) Verify(*pb.ControlCommand) error { return nil }
