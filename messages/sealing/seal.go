package sealing

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
	"runtime"
)

// Recipient is one node an envelope is sealed to.
type Recipient struct {
	NodeID    string
	PublicKey *ecdh.PublicKey
}

// ParsePublicKey decodes a raw 32-byte X25519 credential public key (as carried in
// EnrollRequest.credential_public_key and NodeRecord.credential_public_key).
func ParsePublicKey(raw []byte) (*ecdh.PublicKey, error) {
	pub, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("credential public key (%d bytes): %v: %w", len(raw), err, ErrInvalidKey)
	}
	return pub, nil
}

func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES256GCM() }

// Seal seals plaintext to recipient, the credential public key of node nodeID, for deviceID and purpose.
// It makes no copy of plaintext (the caller still owns it and should Wipe it when done). It fails if the key
// is not X25519, the binding is invalid, or plaintext is empty or longer than MaxPlaintextLen.
func Seal(recipient *ecdh.PublicKey, nodeID, deviceID, purpose string, plaintext []byte) (*Envelope, error) {
	if recipient == nil || recipient.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("seal for node %q: recipient is not an X25519 key: %w", nodeID, ErrInvalidKey)
	}
	if err := ValidateBinding(nodeID, deviceID, purpose); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if n := len(plaintext); n == 0 || n > MaxPlaintextLen {
		return nil, fmt.Errorf("seal for device %q purpose %q: plaintext is %d bytes, want 1..%d: %w",
			deviceID, purpose, n, MaxPlaintextLen, ErrPlaintextSize)
	}
	pk, err := hpke.NewDHKEMPublicKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("seal for node %q: %v: %w", nodeID, err, ErrInvalidKey)
	}
	info := Info(nodeID, deviceID, purpose)
	var enc, ct []byte
	secretDo(func() {
		kdf, aead := suite()
		var s *hpke.Sender
		enc, s, err = hpke.NewSender(pk, kdf, aead, info)
		if err != nil {
			return
		}
		ct, err = s.Seal(nil, plaintext)
	})
	if err != nil {
		return nil, fmt.Errorf("seal for node %q device %q purpose %q: %w", nodeID, deviceID, purpose, err)
	}
	return &Envelope{
		Version:    Version,
		KEM:        KEMX25519HKDFSHA256,
		KDF:        KDFHKDFSHA256,
		AEAD:       AEADAES256GCM,
		NodeID:     nodeID,
		DeviceID:   deviceID,
		Purpose:    purpose,
		KeyID:      KeyIDOfKey(recipient),
		Enc:        enc,
		Ciphertext: ct,
	}, nil
}

// SealAll seals plaintext to every recipient (both nodes of a warm-standby pair, say), one envelope each,
// in recipient order. Node ids must be distinct. It fails as a whole: no envelopes unless all sealed.
func SealAll(recipients []Recipient, deviceID, purpose string, plaintext []byte) ([]*Envelope, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("seal for device %q purpose %q: no recipients: %w", deviceID, purpose, ErrInvalidBinding)
	}
	seen := make(map[string]bool, len(recipients))
	out := make([]*Envelope, 0, len(recipients))
	for _, r := range recipients {
		if seen[r.NodeID] {
			return nil, fmt.Errorf("seal for device %q purpose %q: node %q listed twice: %w", deviceID, purpose,
				r.NodeID, ErrInvalidBinding)
		}
		seen[r.NodeID] = true
		env, err := Seal(r.PublicKey, r.NodeID, deviceID, purpose, plaintext)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// Open opens env with priv, the credential private key of node nodeID, expecting it to be bound to
// (nodeID, deviceID, purpose). The HPKE info is built from these expected values, not from env's clear
// fields, so an envelope for another node, device or purpose never opens. The returned slice is the only
// plaintext copy Open makes: the caller must Wipe it as soon as it is done with it.
//
// Errors: ErrInvalidKey (priv is not DHKEM(X25519, HKDF-SHA256)), ErrInvalidBinding (bad expected values),
// ErrMalformedEnvelope / ErrUnsupportedVersion / ErrUnsupportedSuite (env itself), ErrBindingMismatch (env
// says it is for another binding), ErrWrongKey (sealed to another key), ErrDecrypt (authentication failed).
func Open(priv hpke.PrivateKey, env *Envelope, nodeID, deviceID, purpose string) ([]byte, error) {
	if priv == nil || priv.KEM().ID() != KEMX25519HKDFSHA256 {
		return nil, fmt.Errorf("open: private key is not DHKEM(X25519, HKDF-SHA256): %w", ErrInvalidKey)
	}
	if err := ValidateBinding(nodeID, deviceID, purpose); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if err := env.Validate(); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if env.NodeID != nodeID || env.DeviceID != deviceID || env.Purpose != purpose {
		return nil, fmt.Errorf("open: envelope is for node %q device %q purpose %q, expected node %q device %q purpose %q: %w",
			env.NodeID, env.DeviceID, env.Purpose, nodeID, deviceID, purpose, ErrBindingMismatch)
	}
	if want := KeyIDOf(priv.PublicKey().Bytes()); env.KeyID != want {
		return nil, fmt.Errorf("open device %q purpose %q: sealed to key %s, this key is %s: %w",
			deviceID, purpose, env.KeyID, want, ErrWrongKey)
	}
	info := Info(nodeID, deviceID, purpose)
	var pt []byte
	var err error
	secretDo(func() {
		kdf, aead := suite()
		var r *hpke.Recipient
		r, err = hpke.NewRecipient(env.Enc, priv, kdf, aead, info)
		if err != nil {
			return
		}
		pt, err = r.Open(nil, env.Ciphertext)
	})
	if err != nil {
		return nil, fmt.Errorf("open device %q purpose %q: %v: %w", deviceID, purpose, err, ErrDecrypt)
	}
	return pt, nil
}

// Wipe overwrites b with zeros. Call it on every plaintext Open returns, as soon as the credential has been
// used (defer Wipe(pt) right after a successful Open). See the package doc for what it cannot reach.
func Wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}
