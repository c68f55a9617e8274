package sealing

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Version is the envelope version this build writes and reads.
const Version uint8 = 1

// HPKE algorithm identifiers of the one suite version 1 uses (RFC 9180 §7).
const (
	KEMX25519HKDFSHA256 uint16 = 0x0020
	KDFHKDFSHA256       uint16 = 0x0001
	AEADAES256GCM       uint16 = 0x0002
)

const (
	// encLen is the size of a DHKEM(X25519) encapsulated key.
	encLen = 32
	// tagLen is the AES-GCM tag size.
	tagLen = 16
	// MaxEnvelopeLen bounds the binary encoding of a valid envelope.
	MaxEnvelopeLen = 1 + 3*2 + 3*2 + 2*MaxIDLen + MaxPurposeLen + KeyIDLen + 2 + encLen + 4 + MaxPlaintextLen + tagLen
)

// KeyIDLen is the size of a KeyID.
const KeyIDLen = 8

// keyIDContext domain-separates key ids from any other hash of a public key.
const keyIDContext = "hashfleet-credential-key-v1"

// KeyID names the credential public key an envelope was sealed to: the first 8 bytes of
// SHA-256("hashfleet-credential-key-v1" || public key). It is a hint (which key, and is it still current),
// not a security boundary: HPKE binds the real key.
type KeyID [KeyIDLen]byte

// KeyIDOf returns the KeyID of an X25519 public key (raw 32 bytes).
func KeyIDOf(pub []byte) KeyID {
	h := sha256.New()
	h.Write([]byte(keyIDContext))
	h.Write(pub)
	var id KeyID
	copy(id[:], h.Sum(nil))
	return id
}

// KeyIDOfKey returns the KeyID of an X25519 public key.
func KeyIDOfKey(pub *ecdh.PublicKey) KeyID { return KeyIDOf(pub.Bytes()) }

// String is the key id in lower-case hex.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is unset.
func (k KeyID) IsZero() bool { return k == KeyID{} }

// MarshalText encodes k as lower-case hex.
func (k KeyID) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes 16 hex digits.
func (k *KeyID) UnmarshalText(b []byte) error {
	if len(b) != 2*KeyIDLen {
		return fmt.Errorf("key id %q: want %d hex digits: %w", b, 2*KeyIDLen, ErrMalformedEnvelope)
	}
	var id KeyID
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("key id %q: %v: %w", b, err, ErrMalformedEnvelope)
	}
	*k = id
	return nil
}

// Envelope is one credential sealed to one node's credential key for one device and purpose. It holds no
// secret: NodeID, DeviceID, Purpose and KeyID are public metadata, Enc and Ciphertext are HPKE output.
type Envelope struct {
	// Version is the format version (Version).
	Version uint8 `json:"v"`
	// KEM, KDF and AEAD are the HPKE suite ids (KEMX25519HKDFSHA256, KDFHKDFSHA256, AEADAES256GCM).
	KEM  uint16 `json:"kem"`
	KDF  uint16 `json:"kdf"`
	AEAD uint16 `json:"aead"`
	// NodeID, DeviceID and Purpose are the binding, in clear; the HPKE info binds the same values.
	NodeID   string `json:"node_id"`
	DeviceID string `json:"device_id"`
	Purpose  string `json:"purpose"`
	// KeyID names the recipient credential key.
	KeyID KeyID `json:"key_id"`
	// Enc is the HPKE encapsulated key (32 bytes).
	Enc []byte `json:"enc"`
	// Ciphertext is the AES-256-GCM output: the sealed credential and its 16-byte tag.
	Ciphertext []byte `json:"ct"`
}

// Clone returns a deep copy of e (nil for nil).
func (e *Envelope) Clone() *Envelope {
	if e == nil {
		return nil
	}
	c := *e
	c.Enc = bytes.Clone(e.Enc)
	c.Ciphertext = bytes.Clone(e.Ciphertext)
	return &c
}

// Equal reports whether e and o are the same envelope (every field, byte for byte).
func (e *Envelope) Equal(o *Envelope) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.Version == o.Version && e.KEM == o.KEM && e.KDF == o.KDF && e.AEAD == o.AEAD &&
		e.NodeID == o.NodeID && e.DeviceID == o.DeviceID && e.Purpose == o.Purpose && e.KeyID == o.KeyID &&
		bytes.Equal(e.Enc, o.Enc) && bytes.Equal(e.Ciphertext, o.Ciphertext)
}

// Validate checks that e is structurally a version-1 envelope this build can open: version, suite, binding
// fields and lengths. It says nothing about whether it decrypts.
func (e *Envelope) Validate() error {
	if e == nil {
		return fmt.Errorf("nil envelope: %w", ErrMalformedEnvelope)
	}
	if e.Version != Version {
		return fmt.Errorf("envelope version %d, this build reads %d: %w", e.Version, Version, ErrUnsupportedVersion)
	}
	if e.KEM != KEMX25519HKDFSHA256 || e.KDF != KDFHKDFSHA256 || e.AEAD != AEADAES256GCM {
		return fmt.Errorf("suite kem=0x%04x kdf=0x%04x aead=0x%04x, want 0x%04x/0x%04x/0x%04x: %w",
			e.KEM, e.KDF, e.AEAD, KEMX25519HKDFSHA256, KDFHKDFSHA256, AEADAES256GCM, ErrUnsupportedSuite)
	}
	if err := ValidateBinding(e.NodeID, e.DeviceID, e.Purpose); err != nil {
		return fmt.Errorf("envelope: %w: %w", err, ErrMalformedEnvelope)
	}
	if len(e.Enc) != encLen {
		return fmt.Errorf("envelope enc is %d bytes, want %d: %w", len(e.Enc), encLen, ErrMalformedEnvelope)
	}
	if n := len(e.Ciphertext); n <= tagLen || n > MaxPlaintextLen+tagLen {
		return fmt.Errorf("envelope ciphertext is %d bytes, want %d..%d: %w", n, tagLen+1, MaxPlaintextLen+tagLen,
			ErrMalformedEnvelope)
	}
	return nil
}

// MarshalBinary encodes a valid envelope in the version-1 binary format (see the package doc).
func (e *Envelope) MarshalBinary() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+6+6+len(e.NodeID)+len(e.DeviceID)+len(e.Purpose)+KeyIDLen+2+len(e.Enc)+4+len(e.Ciphertext))
	b = append(b, e.Version)
	b = binary.BigEndian.AppendUint16(b, e.KEM)
	b = binary.BigEndian.AppendUint16(b, e.KDF)
	b = binary.BigEndian.AppendUint16(b, e.AEAD)
	for _, s := range [...]string{e.NodeID, e.DeviceID, e.Purpose} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	b = append(b, e.KeyID[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Enc)))
	b = append(b, e.Enc...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Ciphertext)))
	b = append(b, e.Ciphertext...)
	return b, nil
}

// UnmarshalBinary decodes the binary format strictly (no trailing bytes) and validates the result. The
// decoded envelope shares no memory with data.
func (e *Envelope) UnmarshalBinary(data []byte) error {
	if len(data) > MaxEnvelopeLen {
		return fmt.Errorf("envelope is %d bytes, at most %d: %w", len(data), MaxEnvelopeLen, ErrMalformedEnvelope)
	}
	r := reader{b: data}
	var out Envelope
	out.Version = r.u8()
	if !r.bad && out.Version != Version {
		return fmt.Errorf("envelope version %d, this build reads %d: %w", out.Version, Version, ErrUnsupportedVersion)
	}
	out.KEM, out.KDF, out.AEAD = r.u16(), r.u16(), r.u16()
	out.NodeID = string(r.bytes(int(r.u16())))
	out.DeviceID = string(r.bytes(int(r.u16())))
	out.Purpose = string(r.bytes(int(r.u16())))
	copy(out.KeyID[:], r.bytes(KeyIDLen))
	out.Enc = bytes.Clone(r.bytes(int(r.u16())))
	out.Ciphertext = bytes.Clone(r.bytes(int(r.u32())))
	if r.bad {
		return fmt.Errorf("envelope truncated (%d bytes): %w", len(data), ErrMalformedEnvelope)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("envelope has %d trailing bytes: %w", len(r.b), ErrMalformedEnvelope)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*e = out
	return nil
}

// Parse decodes a binary envelope.
func Parse(data []byte) (*Envelope, error) {
	var e Envelope
	if err := e.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return &e, nil
}

// envelopeJSON has Envelope's fields without its methods, so MarshalJSON/UnmarshalJSON do not recurse.
type envelopeJSON Envelope

// MarshalJSON encodes a valid envelope as JSON (see the package doc for the field names).
func (e *Envelope) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal((*envelopeJSON)(e))
}

// UnmarshalJSON decodes the JSON form strictly (unknown fields refused) and validates the result.
func (e *Envelope) UnmarshalJSON(data []byte) error {
	if len(data) > 4*MaxEnvelopeLen {
		return fmt.Errorf("envelope JSON is %d bytes: %w", len(data), ErrMalformedEnvelope)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var out envelopeJSON
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("envelope JSON: %v: %w", err, ErrMalformedEnvelope)
	}
	if dec.More() {
		return fmt.Errorf("envelope JSON has trailing data: %w", ErrMalformedEnvelope)
	}
	if err := (*Envelope)(&out).Validate(); err != nil {
		return err
	}
	*e = Envelope(out)
	return nil
}

// reader decodes big-endian fields; after the first short read every read returns zero and bad is set.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() uint8 {
	if p := r.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.bytes(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.bytes(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}
