package sealing

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Context is the first field of every envelope's HPKE info. A new envelope version gets a new context, so
// bytes sealed under one version can never be opened as another.
const Context = "hashfleet-credential-v1"

// Limits. They bound what a hostile envelope can make a reader allocate, and keep the info short.
const (
	// MaxIDLen is the longest node id or device id, in bytes.
	MaxIDLen = 255
	// MaxPurposeLen is the longest purpose, in bytes.
	MaxPurposeLen = 64
	// MaxPlaintextLen is the longest credential, in bytes. Pool and miner passwords are far shorter; a PEM
	// private key would still fit.
	MaxPlaintextLen = 8 << 10
)

// Purposes a credential is sealed for. A purpose is 1–64 bytes of [a-z0-9], '-', '.', '_', ':' or '/',
// starting with a letter or digit; these constants are the ones hashfleet uses.
const (
	// PurposeMinerLogin is the password the node logs in to the miner with (Antminer web CGI digest auth,
	// Proto rig /api/v1/auth/login).
	PurposeMinerLogin = "miner-login"
	// purposePoolPrefix prefixes PoolPassword.
	purposePoolPrefix = "pool-password/"
)

// PoolPassword is the purpose of the password of the miner's pool at the given priority (0 = first):
// "pool-password/0", "pool-password/1", ...
func PoolPassword(priority int) string { return purposePoolPrefix + strconv.Itoa(priority) }

// ValidateID checks a node or device id: 1–MaxIDLen bytes of valid UTF-8 with no control characters.
// what names the field in the error ("node id", "device id").
func ValidateID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is empty: %w", what, ErrInvalidBinding)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%s is %d bytes, at most %d allowed: %w", what, len(id), MaxIDLen, ErrInvalidBinding)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s %q is not valid UTF-8: %w", what, id, ErrInvalidBinding)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s %q holds a control character: %w", what, id, ErrInvalidBinding)
		}
	}
	return nil
}

// ValidatePurpose checks a purpose (see the Purpose constants for the alphabet).
func ValidatePurpose(p string) error {
	if p == "" {
		return fmt.Errorf("purpose is empty: %w", ErrInvalidBinding)
	}
	if len(p) > MaxPurposeLen {
		return fmt.Errorf("purpose is %d bytes, at most %d allowed: %w", len(p), MaxPurposeLen, ErrInvalidBinding)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if alnum || (i > 0 && (c == '-' || c == '.' || c == '_' || c == ':' || c == '/')) {
			continue
		}
		return fmt.Errorf("purpose %q: byte %d (%q) not allowed (use [a-z0-9], then also - . _ : /): %w",
			p, i, c, ErrInvalidBinding)
	}
	return nil
}

// ValidateBinding checks all three fields of a binding.
func ValidateBinding(nodeID, deviceID, purpose string) error {
	if err := ValidateID("node id", nodeID); err != nil {
		return err
	}
	if err := ValidateID("device id", deviceID); err != nil {
		return err
	}
	return ValidatePurpose(purpose)
}

// Info returns the HPKE info an envelope for (nodeID, deviceID, purpose) is sealed under:
//
//	field("hashfleet-credential-v1") || field(node_id) || field(device_id) || field(purpose)
//
// with field(x) = u64be(len(x)) || x. Fixed-arity length-prefixed fields are prefix-free, so two different
// bindings never give the same info (("ab","c") and ("a","bc") differ).
func Info(nodeID, deviceID, purpose string) []byte {
	b := make([]byte, 0, 4*8+len(Context)+len(nodeID)+len(deviceID)+len(purpose))
	for _, f := range [...]string{Context, nodeID, deviceID, purpose} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}
