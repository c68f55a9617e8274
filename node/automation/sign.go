package automation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// PolicyContext prefixes the bytes every policy signature covers, so a policy signature can never be taken
// for a command signature (signing.CommandContext) or a session proof, though the same org keys make them.
const PolicyContext = "hashfleet-policy-v1"

// SignedPolicy is a policy as shipped and stored: the exact JSON bytes that were signed, the org key that
// signed them and the signature. The node never re-encodes Body: it verifies these bytes, then decodes them.
type SignedPolicy struct {
	Body      []byte `json:"body"`
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
}

// PolicyBytes returns what a policy signature covers:
//
//	field("hashfleet-policy-v1") || field(key_id) || field(body)
//
// with field(x) = u64be(len(x)) || x, the length-prefixed encoding messages/signing uses for commands.
func PolicyBytes(keyID string, body []byte) []byte {
	b := make([]byte, 0, 24+len(PolicyContext)+len(keyID)+len(body))
	for _, f := range [][]byte{[]byte(PolicyContext), []byte(keyID), body} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// SignPolicy validates p and signs it with the org's active command key at now (the cloud side). The policy's
// org must be the keys' org.
func SignPolicy(p Policy, keys *signing.OrgKeys, now time.Time) (*SignedPolicy, error) {
	if keys == nil {
		return nil, fmt.Errorf("sign policy: no org keys: %w", signing.ErrNoActiveKey)
	}
	if p.Org != keys.OrgID() {
		return nil, fmt.Errorf("sign policy v%d: policy org %q, keys of org %q: %w", p.Version, p.Org, keys.OrgID(), signing.ErrWrongOrg)
	}
	id, err := keys.ActiveKeyID(now)
	if err != nil {
		return nil, fmt.Errorf("sign policy v%d: %w", p.Version, err)
	}
	for _, r := range keys.Export() {
		if r.Key.GetKeyId() == id {
			return SignPolicyWithKey(p, id, ed25519.NewKeyFromSeed(r.PrivateSeed))
		}
	}
	return nil, fmt.Errorf("sign policy v%d: active key %q not exported: %w", p.Version, id, signing.ErrUnknownKey)
}

// SignPolicyWithKey validates p and signs it with one key.
func SignPolicyWithKey(p Policy, keyID string, priv ed25519.PrivateKey) (*SignedPolicy, error) {
	if err := p.Compile(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if org, ok := signing.KeyIDOrg(keyID); !ok || org != p.Org {
		return nil, fmt.Errorf("sign policy v%d: key %q is not a key of org %q: %w", p.Version, keyID, p.Org, signing.ErrWrongOrg)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign policy v%d: private key is %d bytes: %w", p.Version, len(priv), signing.ErrMalformedKey)
	}
	body, err := p.Encode()
	if err != nil {
		return nil, err
	}
	return &SignedPolicy{Body: body, KeyID: keyID, Signature: ed25519.Sign(priv, PolicyBytes(keyID, body))}, nil
}

// KeySource is the node's trust store of org command keys; *signing.Keyring implements it.
type KeySource interface {
	OrgID() string
	// Snapshot returns every key known, revoked ones flagged.
	Snapshot() []*pb.CommandKey
}

// VerifyPolicy checks a policy as it arrives from the cloud (or from an operator at the local UI): signed by a
// key of this node's org that is known, not revoked, and valid at now (with signing.DefaultClockSkew on its
// validity start, as for commands); the signature verifies over PolicyBytes; the body decodes strictly and
// validates; its org is the key's and, if site is not empty, its site is site. It returns the compiled policy.
// Whether it may replace the installed one is Replaces'.
func VerifyPolicy(sp *SignedPolicy, keys KeySource, site string, now time.Time) (Policy, error) {
	return verify(sp, keys, site, &now)
}

// VerifyStoredPolicy checks a policy read back from the node's own store at start: as VerifyPolicy, except
// that the key's validity window is not checked. The policy was verified when installed; a key retired since
// (a routine rotation) does not void what it signed, a revoked one does.
func VerifyStoredPolicy(sp *SignedPolicy, keys KeySource, site string) (Policy, error) {
	return verify(sp, keys, site, nil)
}

func verify(sp *SignedPolicy, keys KeySource, site string, now *time.Time) (Policy, error) {
	if sp == nil || len(sp.Signature) == 0 || sp.KeyID == "" {
		return Policy{}, fmt.Errorf("verify policy: no signature or key id: %w", ErrUnsignedPolicy)
	}
	if keys == nil {
		return Policy{}, fmt.Errorf("verify policy signed by %q: no trusted keys: %w: %w", sp.KeyID, ErrPolicyKey, signing.ErrUnknownKey)
	}
	id := sp.KeyID
	org, ok := signing.KeyIDOrg(id)
	if !ok {
		return Policy{}, fmt.Errorf("verify policy: key id %q is not of the form <org>/<key>: %w: %w", id, ErrPolicyKey, signing.ErrMalformedKey)
	}
	if org != keys.OrgID() {
		return Policy{}, fmt.Errorf("verify policy: key %q belongs to org %q, this node trusts only %q: %w: %w",
			id, org, keys.OrgID(), ErrPolicyKey, signing.ErrWrongOrg)
	}
	var key *pb.CommandKey
	for _, k := range keys.Snapshot() {
		if k.GetKeyId() == id {
			key = k
			break
		}
	}
	switch {
	case key == nil:
		return Policy{}, fmt.Errorf("verify policy: key %q: %w: %w", id, ErrPolicyKey, signing.ErrUnknownKey)
	case key.GetRevoked():
		return Policy{}, fmt.Errorf("verify policy: key %q: %w: %w", id, ErrPolicyKey, signing.ErrRevokedKey)
	}
	if now != nil {
		if from := key.GetValidFromUnixMs(); from > 0 && now.Add(signing.DefaultClockSkew).Before(time.UnixMilli(from)) {
			return Policy{}, fmt.Errorf("verify policy: key %q valid from %s: %w: %w", id,
				time.UnixMilli(from).UTC().Format(time.RFC3339), ErrPolicyKey, signing.ErrKeyNotYetValid)
		}
		if ra := key.GetRetireAfterUnixMs(); ra > 0 && !now.Before(time.UnixMilli(ra)) {
			return Policy{}, fmt.Errorf("verify policy: key %q retired at %s: %w: %w", id,
				time.UnixMilli(ra).UTC().Format(time.RFC3339), ErrPolicyKey, signing.ErrKeyRetired)
		}
	}
	if len(key.GetPublicKey()) != ed25519.PublicKeySize || len(sp.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(key.GetPublicKey(), PolicyBytes(id, sp.Body), sp.Signature) {
		return Policy{}, fmt.Errorf("verify policy signed by %q: %w: %w", id, ErrBadPolicySignature, signing.ErrBadSignature)
	}
	p, err := DecodePolicy(sp.Body)
	if err != nil {
		return Policy{}, fmt.Errorf("verify policy signed by %q: %w", id, err)
	}
	if p.Org != org {
		return Policy{}, fmt.Errorf("verify policy v%d: policy names org %q, signed by a key of %q: %w: %w",
			p.Version, p.Org, org, ErrPolicyKey, signing.ErrWrongOrg)
	}
	if site != "" && p.Site != site {
		return Policy{}, fmt.Errorf("verify policy v%d: for site %q, this node is at %q: %w", p.Version, p.Site, site, ErrWrongSite)
	}
	return p, nil
}

// EncodeSignedPolicy serialises a signed policy for the node's store (JSON; Body is base64).
func EncodeSignedPolicy(sp *SignedPolicy) ([]byte, error) { return json.Marshal(sp) }

// DecodeSignedPolicy reads what EncodeSignedPolicy wrote.
func DecodeSignedPolicy(b []byte) (*SignedPolicy, error) {
	var sp SignedPolicy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("decode signed policy: %v: %w", err, ErrMalformedPolicy)
	}
	return &sp, nil
}
