package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// KeyStore persists the keyring snapshot (node/store.Badger).
type KeyStore interface {
	SaveKeyring(orgID string, keys []*pb.CommandKey) error
	Keyring() (orgID string, keys []*pb.CommandKey, err error)
}

// KeyApplier is a Verifier that also applies the key announcements and revocations carried in verified
// commands. The gate prepares the change, persists the new snapshot together with the command's seq mark
// (Store.CommitKeyCommand), and only then installs it.
type KeyApplier interface {
	Verifier
	// PrepareKeyCommand applies the announcement or revocation cmd carries to a copy of the trust store and
	// returns it; the live trust store is unchanged until KeyChange.Install. cmd must already have passed
	// Verify.
	PrepareKeyCommand(cmd *pb.ControlCommand) (*KeyChange, error)
}

// KeyChange is a prepared trust-store change.
type KeyChange struct {
	OrgID   string
	Keys    []*pb.CommandKey // the snapshot to persist
	Summary string           // what changed, for the audit record
	install func()
}

// Install makes the change live. Call it after the snapshot is persisted.
func (c *KeyChange) Install() { c.install() }

// KeyringVerifier is the node's ed25519 Verifier: a signing.Keyring of its org's command-issuance keys, at
// the injected clock's now. It refuses a command whose key id is unknown, of another org, revoked, retired or
// not yet valid (ErrUnknownKey → REFUSED_KEY) and one whose signature does not verify over the canonical
// bytes (ErrBadSignature → REFUSED_SIGNATURE). New keys arrive only as KeyAnnouncements in commands signed by
// a key it already trusts; revocations likewise; both persist with the command's seq mark.
type KeyringVerifier struct {
	clk clock.Clock
	log *slog.Logger

	mu   sync.RWMutex
	ring *signing.Keyring
}

var _ KeyApplier = (*KeyringVerifier)(nil)

// NewKeyringVerifier restores the keyring persisted in st, or, when there is none, starts from initial (the
// command keys enrollment delivered) and persists it. A persisted keyring of another org than orgID is
// refused: the node was enrolled elsewhere.
func NewKeyringVerifier(st KeyStore, orgID string, initial []*pb.CommandKey, clk clock.Clock, log *slog.Logger) (*KeyringVerifier, error) {
	if clk == nil {
		clk = clock.Real()
	}
	if log == nil {
		log = slog.Default()
	}
	org, keys, err := st.Keyring()
	switch {
	case err == nil:
		if orgID != "" && org != orgID {
			return nil, fmt.Errorf("keyring: the node store trusts the keys of org %q, not %q: %w", org, orgID, ErrNoVerifier)
		}
	case len(initial) == 0:
		return nil, fmt.Errorf("keyring: no trusted command keys (enroll the node first): %w", ErrNoVerifier)
	default:
		org, keys = orgID, initial
	}
	ring, err := signing.NewKeyring(org, keys)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if err := st.SaveKeyring(org, ring.Snapshot()); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &KeyringVerifier{clk: clk, log: log, ring: ring}, nil
}

func (k *KeyringVerifier) current() *signing.Keyring {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.ring
}

// OrgID is the org whose keys the node trusts.
func (k *KeyringVerifier) OrgID() string { return k.current().OrgID() }

// Snapshot is every key known, trusted and revoked.
func (k *KeyringVerifier) Snapshot() []*pb.CommandKey { return k.current().Snapshot() }

// Verify implements Verifier.
func (k *KeyringVerifier) Verify(cmd *pb.ControlCommand) error {
	return classify(k.current().Verify(cmd, k.clk.Now()))
}

// classify maps the signing package's refusals onto the gate's two classes.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, signing.ErrUnknownKey), errors.Is(err, signing.ErrRevokedKey), errors.Is(err, signing.ErrKeyRetired),
		errors.Is(err, signing.ErrKeyNotYetValid), errors.Is(err, signing.ErrWrongOrg), errors.Is(err, signing.ErrMalformedKey):
		return fmt.Errorf("%w: %w", ErrUnknownKey, err)
	default:
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
}

// PrepareKeyCommand implements KeyApplier.
func (k *KeyringVerifier) PrepareKeyCommand(cmd *pb.ControlCommand) (*KeyChange, error) {
	cur := k.current()
	next, err := signing.NewKeyring(cur.OrgID(), cur.Snapshot())
	if err != nil {
		return nil, fmt.Errorf("copy keyring: %w", err)
	}
	now := k.clk.Now()
	var summary string
	p, err := payloadOf(cmd)
	if err != nil {
		return nil, err
	}
	switch {
	case p.GetKeyAnnouncement() != nil:
		if err := next.ApplyAnnouncement(cmd, nil, now); err != nil {
			return nil, err
		}
		a := p.GetKeyAnnouncement()
		summary = fmt.Sprintf("key %s announced (fingerprint %s)", a.GetKey().GetKeyId(), signing.Fingerprint(a.GetKey().GetPublicKey()))
		if a.GetRetireKeyId() != "" {
			summary += fmt.Sprintf("; key %s retires at unix ms %d", a.GetRetireKeyId(), a.GetRetireAtUnixMs())
		}
	case p.GetKeyRevocation() != nil:
		if err := next.ApplyRevocation(cmd, nil, now); err != nil {
			return nil, err
		}
		summary = fmt.Sprintf("key %s revoked", p.GetKeyRevocation().GetKeyId())
	default:
		return nil, fmt.Errorf("command seq %d carries no key announcement or revocation: %w", cmd.GetMonotonicSeq(), signing.ErrPayloadMismatch)
	}
	return &KeyChange{OrgID: next.OrgID(), Keys: next.Snapshot(), Summary: summary, install: func() {
		k.mu.Lock()
		k.ring = next
		k.mu.Unlock()
		k.log.Info("trusted command keys changed", slog.String("change", summary))
	}}, nil
}

// Untrusted returns the key ids the cloud lists (HelloAck.command_keys) that the node does not trust and
// has not revoked: keys whose signed announcement has not reached it. They are only reported, never
// trusted: an unsigned list cannot add a key.
func (k *KeyringVerifier) Untrusted(listed []*pb.CommandKey) []string {
	known := map[string]bool{}
	for _, ck := range k.Snapshot() {
		known[ck.GetKeyId()] = true
	}
	var out []string
	for _, ck := range listed {
		if !known[ck.GetKeyId()] && !ck.GetRevoked() {
			out = append(out, ck.GetKeyId())
		}
	}
	slices.Sort(out)
	return out
}
