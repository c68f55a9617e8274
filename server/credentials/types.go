package credentials

import (
	"crypto/ecdh"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// NodeKey is a node as the vault knows it: its id, its org and its X25519 credential public key (raw 32
// bytes, NodeRecord.credential_public_key).
type NodeKey struct {
	NodeID    string `json:"node_id"`
	OrgID     string `json:"org_id"`
	PublicKey []byte `json:"public_key"`
}

// KeyFromRecord returns the NodeKey of an enrolled node, refusing one that is not confirmed, is revoked, or
// has no credential key.
func KeyFromRecord(rec *pb.NodeRecord) (NodeKey, error) {
	switch {
	case rec == nil:
		return NodeKey{}, fmt.Errorf("nil node record: %w", ErrInvalidOwners)
	case rec.GetRevoked():
		return NodeKey{}, fmt.Errorf("node %q: %w", rec.GetNodeId(), ErrNodeRevoked)
	case !rec.GetConfirmed():
		return NodeKey{}, fmt.Errorf("node %q is not confirmed yet: %w", rec.GetNodeId(), ErrInvalidOwners)
	}
	k := NodeKey{NodeID: rec.GetNodeId(), OrgID: rec.GetOrgId(), PublicKey: slices.Clone(rec.GetCredentialPublicKey())}
	if err := k.validate(); err != nil {
		return NodeKey{}, err
	}
	return k, nil
}

func (k NodeKey) validate() error {
	if err := sealing.ValidateID("node id", k.NodeID); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalidOwners)
	}
	if k.OrgID == "" {
		return fmt.Errorf("node %q has no org id: %w", k.NodeID, ErrInvalidOwners)
	}
	if _, err := sealing.ParsePublicKey(k.PublicKey); err != nil {
		return fmt.Errorf("node %q: %w", k.NodeID, err)
	}
	return nil
}

func (k NodeKey) pub() *ecdh.PublicKey {
	p, err := sealing.ParsePublicKey(k.PublicKey)
	if err != nil {
		return nil
	}
	return p
}

// KeyID is the sealing.KeyID of the node's credential key.
func (k NodeKey) KeyID() sealing.KeyID { return sealing.KeyIDOf(k.PublicKey) }

func (k NodeKey) equal(o NodeKey) bool {
	return k.NodeID == o.NodeID && k.OrgID == o.OrgID && string(k.PublicKey) == string(o.PublicKey)
}

func (k NodeKey) clone() NodeKey { k.PublicKey = slices.Clone(k.PublicKey); return k }

// State is a device's or a credential's workflow state, as the API shows it.
type State string

// States.
const (
	// StateActive: every envelope is for a trusted owner, no revoked node could read the current secret.
	StateActive State = "active"
	// StateTransferPending: the device is moving to new owners; the outgoing node has not uploaded the
	// re-sealed envelopes yet. Old envelopes are deleted only when it has.
	StateTransferPending State = "transfer-pending"
	// StateRevocationPending: a revoked node could read the current secret; it must be rotated (a new secret
	// set on the miner through a trusted node, then sealed) before the state clears.
	StateRevocationPending State = "revocation-pending"
)

// DeviceRecord is everything the vault stores for one device: ciphertext and workflow state, never
// plaintext. Store implementations persist it whole; its slices are kept sorted (owners and envelopes by
// node id, credentials by purpose) so equal records encode equally.
type DeviceRecord struct {
	DeviceID string `json:"device_id"`
	OrgID    string `json:"org_id"`
	// Owners are the nodes every credential is sealed to (both nodes of a warm-standby pair). Empty only when
	// every owner was revoked: the next Put establishes new owners.
	Owners      []NodeKey    `json:"owners"`
	Credentials []Credential `json:"credentials"`
	// Transfer is the transfer in progress, if any.
	Transfer  *Transfer `json:"transfer,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Credential is one secret of a device (one purpose): its envelopes and its revocation state.
type Credential struct {
	Purpose string `json:"purpose"`
	// Generation counts the secrets stored for this purpose: Put and CompleteRotation with envelopes each
	// store a new one. A transfer re-seals the same generation.
	Generation uint64 `json:"generation"`
	// Envelopes holds one envelope per node that can currently fetch the secret.
	Envelopes []*sealing.Envelope `json:"envelopes"`
	// Readers are every node that was ever given an envelope of the current generation, including former
	// owners after a transfer: a later revocation of any of them makes this generation revocation-pending.
	Readers []string `json:"readers"`
	// RevocationPending is set when a reader was revoked, and cleared by CompleteRotation.
	RevocationPending bool      `json:"revocation_pending,omitempty"`
	PendingSince      time.Time `json:"pending_since,omitzero"`
	// RevokedReaders are the revoked nodes that could read a generation up to RevokedGeneration.
	RevokedReaders    []string  `json:"revoked_readers,omitempty"`
	RevokedGeneration uint64    `json:"revoked_generation,omitempty"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Transfer is a transfer in progress: From re-seals the device's credentials to the To nodes that lack
// them, then the To set becomes the owner set and every other envelope is deleted.
type Transfer struct {
	From      string    `json:"from"`
	To        []NodeKey `json:"to"`
	StartedAt time.Time `json:"started_at"`
}

// ResealRequest is the work a transfer asks of the outgoing node: open each Source (its own envelope) and
// seal the plaintext to To, for DeviceID and Purpose, then upload all the results in one CompleteTransfer.
type ResealRequest struct {
	DeviceID string `json:"device_id"`
	// From is the node asked to re-seal.
	From  string       `json:"from"`
	Items []ResealItem `json:"items"`
	// Unsealable lists purposes From holds no envelope for: no trusted node can re-seal them, so after the
	// transfer they must be entered again with Put.
	Unsealable []string `json:"unsealable,omitempty"`
	// Done is set when there was nothing to re-seal and the transfer completed at once.
	Done bool `json:"done,omitempty"`
}

// ResealItem is one envelope to re-seal.
type ResealItem struct {
	Purpose string            `json:"purpose"`
	Source  *sealing.Envelope `json:"source"`
	To      NodeKey           `json:"to"`
}

// Status is the API's view of a device's credentials.
type Status struct {
	DeviceID string `json:"device_id"`
	OrgID    string `json:"org_id"`
	// State summarises the device: transfer-pending if a transfer is in progress, else revocation-pending if
	// any credential is, else active.
	State       State              `json:"state"`
	Owners      []string           `json:"owners"`
	Transfer    *TransferStatus    `json:"transfer,omitempty"`
	Credentials []CredentialStatus `json:"credentials"`
}

// TransferStatus shows a transfer in progress.
type TransferStatus struct {
	From      string    `json:"from"`
	To        []string  `json:"to"`
	StartedAt time.Time `json:"started_at"`
	// Outstanding counts the (purpose, new owner) envelopes still missing.
	Outstanding int `json:"outstanding"`
}

// CredentialStatus shows one credential. It never includes ciphertext or plaintext.
type CredentialStatus struct {
	Purpose    string `json:"purpose"`
	State      State  `json:"state"`
	Generation uint64 `json:"generation"`
	// Holders are the nodes holding an envelope now.
	Holders []string `json:"holders"`
	// NeedsReentry: no trusted node holds it, so only a new Put can restore it.
	NeedsReentry bool `json:"needs_reentry,omitempty"`
	// For revocation-pending credentials: since when, which revoked nodes could read it, and whether a new
	// secret has already been put (it then awaits a trusted node's CompleteRotation confirming it is set).
	PendingSince    time.Time `json:"pending_since,omitzero"`
	RevokedReaders  []string  `json:"revoked_readers,omitempty"`
	NewSecretStaged bool      `json:"new_secret_staged,omitempty"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// RevocationReport says what RevokeNode changed.
type RevocationReport struct {
	NodeID string `json:"node_id"`
	// Devices whose credentials the node could read; each has revocation-pending credentials now.
	Devices []string `json:"devices"`
	// CancelledTransfers are devices whose transfer could no longer complete (the revoked node was its only
	// target, or no trusted owner is left to re-seal).
	CancelledTransfers []string `json:"cancelled_transfers,omitempty"`
}

// Nodes returns every node the record concerns (owners, envelope holders, readers of a current generation,
// transfer source and targets), sorted and unique. Stores index devices by these nodes.
func (r *DeviceRecord) Nodes() []string {
	var ns []string
	for _, o := range r.Owners {
		ns = append(ns, o.NodeID)
	}
	for _, c := range r.Credentials {
		ns = append(ns, c.Readers...)
		for _, e := range c.Envelopes {
			ns = append(ns, e.NodeID)
		}
	}
	if r.Transfer != nil {
		ns = append(ns, r.Transfer.From)
		for _, t := range r.Transfer.To {
			ns = append(ns, t.NodeID)
		}
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}

// Pending reports whether the device needs work: a transfer in progress or a revocation-pending
// credential. Stores index such devices.
func (r *DeviceRecord) Pending() bool {
	if r.Transfer != nil {
		return true
	}
	for _, c := range r.Credentials {
		if c.RevocationPending {
			return true
		}
	}
	return false
}

// Clone returns a deep copy.
func (r *DeviceRecord) Clone() *DeviceRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.Owners = cloneKeys(r.Owners)
	c.Credentials = make([]Credential, len(r.Credentials))
	for i, cr := range r.Credentials {
		cr.Envelopes = cloneEnvs(cr.Envelopes)
		cr.Readers = slices.Clone(cr.Readers)
		cr.RevokedReaders = slices.Clone(cr.RevokedReaders)
		c.Credentials[i] = cr
	}
	if r.Transfer != nil {
		t := *r.Transfer
		t.To = cloneKeys(t.To)
		c.Transfer = &t
	}
	return &c
}

func cloneKeys(ks []NodeKey) []NodeKey {
	if ks == nil {
		return nil
	}
	out := make([]NodeKey, len(ks))
	for i, k := range ks {
		out[i] = k.clone()
	}
	return out
}

func cloneEnvs(es []*sealing.Envelope) []*sealing.Envelope {
	if es == nil {
		return nil
	}
	out := make([]*sealing.Envelope, len(es))
	for i, e := range es {
		out[i] = e.Clone()
	}
	return out
}

func sortKeys(ks []NodeKey) {
	slices.SortFunc(ks, func(a, b NodeKey) int { return strings.Compare(a.NodeID, b.NodeID) })
}

func sortEnvs(es []*sealing.Envelope) {
	slices.SortFunc(es, func(a, b *sealing.Envelope) int { return strings.Compare(a.NodeID, b.NodeID) })
}
