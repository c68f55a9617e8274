package credentials

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/identity"
)

// Config configures an Opener.
type Config struct {
	// NodeID is this node's id (enrollment.json node_id): envelopes must be bound to it.
	NodeID string
	// Key is this node's credential private key (identity.Identity.HPKEPrivateKey).
	Key hpke.PrivateKey
	// Owns reports whether this node owns a device per the confirmed ownership map (the CommandGate's).
	// Required: a credential of a device the node does not own is never opened.
	Owns func(deviceID string) bool
}

// Validate reports what is missing or wrong.
func (c Config) Validate() error {
	if err := sealing.ValidateID("node id", c.NodeID); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalidConfig)
	}
	if c.Key == nil || c.Key.KEM().ID() != sealing.KEMX25519HKDFSHA256 {
		return fmt.Errorf("credential key is not an X25519 HPKE key: %w", ErrInvalidConfig)
	}
	if c.Owns == nil {
		return fmt.Errorf("no ownership check: %w", ErrInvalidConfig)
	}
	return nil
}

// Opener opens this node's credential envelopes. It holds the node's private key and nothing else secret;
// it is safe for concurrent use.
type Opener struct {
	nodeID string
	key    hpke.PrivateKey
	keyID  sealing.KeyID
	owns   func(string) bool
}

// New returns an Opener for cfg.
func New(cfg Config) (*Opener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Opener{nodeID: cfg.NodeID, key: cfg.Key, keyID: sealing.KeyIDOf(cfg.Key.PublicKey().Bytes()), owns: cfg.Owns}, nil
}

// FromIdentity returns an Opener using id's credential key.
func FromIdentity(id *identity.Identity, nodeID string, owns func(deviceID string) bool) (*Opener, error) {
	key, err := id.HPKEPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("credential opener: %v: %w", err, ErrInvalidConfig)
	}
	return New(Config{NodeID: nodeID, Key: key, Owns: owns})
}

// NodeID is the node the Opener opens for.
func (o *Opener) NodeID() string { return o.nodeID }

// KeyID names the node's credential key, as envelopes sealed to it carry it.
func (o *Opener) KeyID() sealing.KeyID { return o.keyID }

// Open opens env for (deviceID, purpose) on this node and returns the secret. The caller must Wipe it as
// soon as it is used; prefer Use, which does. Refused: a device this node does not own (ErrNotOwner), an
// envelope for another node, device or purpose, or sealed to another key, or altered (sealing's errors).
func (o *Opener) Open(env *sealing.Envelope, deviceID, purpose string) ([]byte, error) {
	if !o.owns(deviceID) {
		return nil, fmt.Errorf("open %s/%s on node %s: %w", deviceID, purpose, o.nodeID, ErrNotOwner)
	}
	pt, err := sealing.Open(o.key, env, o.nodeID, deviceID, purpose)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", o.nodeID, err)
	}
	return pt, nil
}

// Use opens env, calls fn with the secret, and wipes the secret when fn returns or panics. fn must not keep
// the slice or a copy of it.
func (o *Opener) Use(env *sealing.Envelope, deviceID, purpose string, fn func(secret []byte) error) error {
	pt, err := o.Open(env, deviceID, purpose)
	if err != nil {
		return err
	}
	defer Wipe(pt)
	return fn(pt)
}

// Reseal opens this node's envelope env for (deviceID, purpose) and seals the secret to another node (the
// new owner in a transfer, or this node's own new key). The plaintext exists only inside this call and is
// wiped before it returns.
func (o *Opener) Reseal(env *sealing.Envelope, deviceID, purpose, toNodeID string, toPub *ecdh.PublicKey) (*sealing.Envelope, error) {
	var out *sealing.Envelope
	err := o.Use(env, deviceID, purpose, func(pt []byte) error {
		var err error
		out, err = sealing.Seal(toPub, toNodeID, deviceID, purpose, pt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reseal %s/%s to %s: %w", deviceID, purpose, toNodeID, err)
	}
	return out, nil
}

// SealRotation seals a new secret for (deviceID, purpose) to every owner, for the cloud's CompleteRotation:
// call it after the miner accepted the new secret. owners must include this node (a node seals a rotation
// for a device it owns, and keeps its own copy); the caller still owns secret and wipes it.
func (o *Opener) SealRotation(deviceID, purpose string, secret []byte, owners []sealing.Recipient) ([]*sealing.Envelope, error) {
	if !o.owns(deviceID) {
		return nil, fmt.Errorf("rotate %s/%s on node %s: %w", deviceID, purpose, o.nodeID, ErrNotOwner)
	}
	self := false
	for _, r := range owners {
		if r.NodeID == o.nodeID {
			if r.PublicKey == nil || sealing.KeyIDOfKey(r.PublicKey) != o.keyID {
				return nil, fmt.Errorf("rotate %s/%s: recipient %s is not this node's current key: %w", deviceID, purpose, o.nodeID, ErrNotRecipient)
			}
			self = true
		}
	}
	if !self {
		return nil, fmt.Errorf("rotate %s/%s: %w", deviceID, purpose, ErrNotRecipient)
	}
	envs, err := sealing.SealAll(owners, deviceID, purpose, secret)
	if err != nil {
		return nil, fmt.Errorf("rotate %s/%s: %w", deviceID, purpose, err)
	}
	return envs, nil
}

// Wipe overwrites a secret with zeros (sealing.Wipe).
func Wipe(secret []byte) { sealing.Wipe(secret) }
