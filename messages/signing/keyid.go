package signing

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// keyIDLocalPrefix starts the random part of every key id.
const keyIDLocalPrefix = "k_"

// NewKeyID returns a fresh key id for org: "<org_id>/k_" followed by 16 random hex digits.
func NewKeyID(orgID string) (string, error) {
	if orgID == "" {
		return "", fmt.Errorf("new key id: %w", ErrEmptyOrg)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new key id: %w", err)
	}
	return orgID + "/" + keyIDLocalPrefix + hex.EncodeToString(b[:]), nil
}

// KeyIDOrg returns the org a key id is namespaced to. ok is false if the id is not of the form
// "<org_id>/<local>" with both parts non-empty and no '/' in the local part.
func KeyIDOrg(keyID string) (orgID string, ok bool) {
	i := strings.LastIndexByte(keyID, '/')
	if i <= 0 || i == len(keyID)-1 {
		return "", false
	}
	return keyID[:i], true
}

// checkKeyIDOrg checks that keyID is namespaced and belongs to orgID.
func checkKeyIDOrg(keyID, orgID string) error {
	org, ok := KeyIDOrg(keyID)
	if !ok {
		return fmt.Errorf("key id %q is not of the form <org_id>/<local>: %w", keyID, ErrMalformedKey)
	}
	if org != orgID {
		return fmt.Errorf("key id %q belongs to org %q, not %q: %w", keyID, org, orgID, ErrWrongOrg)
	}
	return nil
}
