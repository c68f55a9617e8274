package signing

import (
	"crypto/ed25519"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Sign sets cmd.Signature to the ed25519 signature of CanonicalBytes(cmd) by key. Set cmd.KeyId to the key's
// id before signing: the key id is covered. OrgKeys.Sign does both.
func Sign(key ed25519.PrivateKey, cmd *pb.ControlCommand) error {
	if cmd == nil {
		return fmt.Errorf("sign: nil command: %w", ErrMalformedCommand)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign: private key is %d bytes, want %d: %w", len(key), ed25519.PrivateKeySize, ErrMalformedKey)
	}
	cmd.Signature = ed25519.Sign(key, CanonicalBytes(cmd))
	return nil
}

// Verify checks cmd.Signature over CanonicalBytes(cmd) with pub. It says nothing about whether pub may sign
// for this node now: that is Keyring.Verify.
func Verify(pub ed25519.PublicKey, cmd *pb.ControlCommand) error {
	if cmd == nil {
		return fmt.Errorf("verify: nil command: %w", ErrMalformedCommand)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: public key is %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrMalformedKey)
	}
	if len(cmd.GetSignature()) != ed25519.SignatureSize {
		return fmt.Errorf("verify: signature is %d bytes, want %d: %w", len(cmd.GetSignature()), ed25519.SignatureSize, ErrBadSignature)
	}
	if !ed25519.Verify(pub, CanonicalBytes(cmd), cmd.GetSignature()) {
		return fmt.Errorf("verify command seq %d with key %q: %w", cmd.GetMonotonicSeq(), cmd.GetKeyId(), ErrBadSignature)
	}
	return nil
}
