package credentials

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// Config configures a Vault.
type Config struct {
	// Clock stamps workflow steps (pending since, transfer started). Default: the wall clock.
	Clock clock.Clock
	// Logger gets one line per workflow step, keyed by org, device, purpose, node and generation. It never
	// gets a plaintext or a ciphertext. Default: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Clock: clock.Real(), Logger: slog.Default()} }

// Validate reports an unusable config.
func (c Config) Validate() error {
	if c.Clock == nil {
		return fmt.Errorf("clock is nil: %w", ErrInvalidConfig)
	}
	if c.Logger == nil {
		return fmt.Errorf("logger is nil: %w", ErrInvalidConfig)
	}
	return nil
}

// Vault is the cloud's credential vault: it seals operator-entered secrets to the owning nodes, keeps only
// the envelopes, hands each node its own, and runs the transfer and revocation workflows. It is safe for
// concurrent use; every step is one Store transaction, decided by the pure functions in decide.go.
type Vault struct {
	store Store
	clk   clock.Clock
	log   *slog.Logger
}

// New returns a Vault over store. Zero Config fields take DefaultConfig's values.
func New(store Store, cfg Config) (*Vault, error) {
	d := DefaultConfig()
	if cfg.Clock == nil {
		cfg.Clock = d.Clock
	}
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("store is nil: %w", ErrInvalidConfig)
	}
	return &Vault{store: store, clk: cfg.Clock, log: cfg.Logger.With("subsystem", "credentials")}, nil
}

// revokedOf reads, inside tx, which of ids are revoked.
func revokedOf(tx Tx, ids ...string) (revokedSet, error) {
	r := make(revokedSet, len(ids))
	for _, id := range ids {
		ok, err := tx.Revoked(id)
		if err != nil {
			return nil, err
		}
		r[id] = ok
	}
	return r, nil
}

func validateOwners(orgID string, owners []NodeKey) ([]NodeKey, error) {
	if len(owners) == 0 {
		return nil, fmt.Errorf("no owners: %w", ErrInvalidOwners)
	}
	out := cloneKeys(owners)
	sortKeys(out)
	for i, k := range out {
		if err := k.validate(); err != nil {
			return nil, err
		}
		if k.OrgID != orgID {
			return nil, fmt.Errorf("node %q is in org %q, not %q: %w", k.NodeID, k.OrgID, orgID, ErrWrongOrg)
		}
		if i > 0 && out[i-1].NodeID == k.NodeID {
			return nil, fmt.Errorf("node %q listed twice: %w", k.NodeID, ErrInvalidOwners)
		}
	}
	return out, nil
}

// Put seals plaintext for (deviceID, purpose) to every owner and stores the envelopes as the credential's
// new generation. plaintext is read only by the seal: Put keeps no reference to it, never logs or stores
// it; the caller owns it and should sealing.Wipe it after Put returns.
//
// The first Put of a device (or the first after all its owners were revoked) establishes its owner set;
// later ones must name the same owners with the same keys (ErrOwnersMismatch; change owners with Transfer).
// A revoked owner, an owner of another org, or a transfer in progress refuse the Put. A Put on a
// revocation-pending credential stages the new secret: it stays pending until a trusted owner confirms
// with CompleteRotation that the miner has it.
func (v *Vault) Put(orgID, deviceID, purpose string, plaintext []byte, owners []NodeKey) error {
	if orgID == "" {
		return fmt.Errorf("put: org id is empty: %w", sealing.ErrInvalidBinding)
	}
	if err := sealing.ValidateID("device id", deviceID); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if err := sealing.ValidatePurpose(purpose); err != nil {
		return fmt.Errorf("put %s: %w", deviceID, err)
	}
	owners, err := validateOwners(orgID, owners)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", deviceID, purpose, err)
	}
	recips := make([]sealing.Recipient, len(owners))
	for i, k := range owners {
		recips[i] = sealing.Recipient{NodeID: k.NodeID, PublicKey: k.pub()}
	}
	envs, err := sealing.SealAll(recips, deviceID, purpose, plaintext)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", deviceID, purpose, err)
	}
	now := v.clk.Now()
	var out *DeviceRecord
	err = v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		rev, err := revokedOf(tx, ownerIDs(owners)...)
		if err != nil {
			return err
		}
		out, err = decidePut(rec, orgID, deviceID, purpose, owners, envs, rev, now)
		if err != nil {
			return err
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	c, _ := out.credential(purpose)
	v.log.Info("credential sealed", "org", orgID, "device", deviceID, "purpose", purpose,
		"generation", c.Generation, "owners", ownerIDs(owners), "revocation_pending", c.RevocationPending)
	return nil
}

// Envelopes returns every envelope sealed to nodeID, sorted by device and purpose. A revoked node gets
// ErrNodeRevoked.
func (v *Vault) Envelopes(nodeID string) ([]*sealing.Envelope, error) {
	var out []*sealing.Envelope
	err := v.store.View(func(tx Tx) error {
		if ok, err := tx.Revoked(nodeID); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("envelopes of %q: %w", nodeID, ErrNodeRevoked)
		}
		devs, err := tx.DevicesOf(nodeID)
		if err != nil {
			return err
		}
		for _, d := range devs {
			rec, err := tx.Device(d)
			if err != nil {
				return err
			}
			if rec == nil {
				continue
			}
			for _, c := range rec.Credentials {
				if e := c.envelopeFor(nodeID); e != nil {
					out = append(out, e.Clone())
				}
			}
		}
		return nil
	})
	return out, err
}

// Envelope returns nodeID's envelope for (deviceID, purpose): ErrNodeRevoked, ErrUnknownDevice,
// ErrUnknownCredential, or ErrNotOwner when the node holds none.
func (v *Vault) Envelope(nodeID, deviceID, purpose string) (*sealing.Envelope, error) {
	var out *sealing.Envelope
	err := v.store.View(func(tx Tx) error {
		if ok, err := tx.Revoked(nodeID); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("envelope %s/%s for %q: %w", deviceID, purpose, nodeID, ErrNodeRevoked)
		}
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("envelope %s/%s: %w", deviceID, purpose, ErrUnknownDevice)
		}
		c, _ := rec.credential(purpose)
		if c == nil {
			return fmt.Errorf("envelope %s/%s: %w", deviceID, purpose, ErrUnknownCredential)
		}
		e := c.envelopeFor(nodeID)
		if e == nil {
			return fmt.Errorf("envelope %s/%s: node %q holds none: %w", deviceID, purpose, nodeID, ErrNotOwner)
		}
		out = e.Clone()
		return nil
	})
	return out, err
}

// Transfer starts moving deviceID to the owner set to (one node, or both nodes of a pair; it may keep some
// current owners). from, a trusted current owner, must re-seal: the returned ResealRequest lists what it
// must open and seal to whom, to be uploaded with CompleteTransfer. Until then the old envelopes stay and
// the device is transfer-pending. If nothing needs re-sealing the transfer completes at once (Done).
func (v *Vault) Transfer(deviceID, from string, to []NodeKey) (ResealRequest, error) {
	var req ResealRequest
	now := v.clk.Now()
	err := v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("transfer %s: %w", deviceID, ErrUnknownDevice)
		}
		toKeys, err := validateOwners(rec.OrgID, to)
		if err != nil {
			return fmt.Errorf("transfer %s: %w", deviceID, err)
		}
		rev, err := revokedOf(tx, append(ownerIDs(toKeys), from)...)
		if err != nil {
			return err
		}
		out, r, err := decideTransfer(rec, from, toKeys, rev, now)
		if err != nil {
			return err
		}
		req = r
		return tx.PutDevice(out)
	})
	if err != nil {
		return ResealRequest{}, err
	}
	v.log.Info("credential transfer started", "device", deviceID, "node", from, "to", ownerIDs(to),
		"reseal", len(req.Items), "unsealable", req.Unsealable, "done", req.Done)
	return req, nil
}

// ResealWork returns what node by must re-seal to finish the device's transfer: the original request after
// a restart, or the same work for another trusted owner when the outgoing node was revoked meanwhile.
func (v *Vault) ResealWork(deviceID, by string) (ResealRequest, error) {
	var req ResealRequest
	err := v.store.View(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("reseal work %s: %w", deviceID, ErrUnknownDevice)
		}
		if rec.Transfer == nil {
			return fmt.Errorf("reseal work %s: %w", deviceID, ErrNoTransfer)
		}
		if ok, err := tx.Revoked(by); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("reseal work %s: node %q: %w", deviceID, by, ErrNodeRevoked)
		}
		src, ok := findKey(rec.Owners, by)
		if !ok {
			return fmt.Errorf("reseal work %s: %q is not among its owners: %w", deviceID, by, ErrNotOwner)
		}
		items, unsealable := resealItems(rec, src, rec.Transfer.To)
		req = ResealRequest{DeviceID: deviceID, From: by, Items: items, Unsealable: unsealable}
		return nil
	})
	return req, err
}

// CompleteTransfer takes the envelopes by (a trusted current owner, normally the outgoing node) re-sealed
// for the transfer. They must be exactly the ones its ResealWork lists; then the new owner set takes over
// and every envelope of a node outside it is deleted.
func (v *Vault) CompleteTransfer(deviceID, by string, envs []*sealing.Envelope) error {
	now := v.clk.Now()
	var out *DeviceRecord
	err := v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("complete transfer %s: %w", deviceID, ErrUnknownDevice)
		}
		ids := []string{by}
		if rec.Transfer != nil {
			ids = append(ids, ownerIDs(rec.Transfer.To)...)
		}
		rev, err := revokedOf(tx, ids...)
		if err != nil {
			return err
		}
		out, err = decideCompleteTransfer(rec, by, envs, rev, now)
		if err != nil {
			return err
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	v.log.Info("credential transfer completed", "device", deviceID, "node", by, "owners", ownerIDs(out.Owners))
	return nil
}

// CancelTransfer abandons the device's transfer; the current owners keep their envelopes.
func (v *Vault) CancelTransfer(deviceID string) error {
	now := v.clk.Now()
	err := v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		out, err := decideCancelTransfer(rec, now)
		if err != nil {
			return err
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	v.log.Info("credential transfer cancelled", "device", deviceID)
	return nil
}

// RevokeNode revokes nodeID in the vault: from now on nothing is sealed to it and it gets no envelope;
// every device it owned loses its envelopes, and every credential it could read (including ones it held
// before a transfer) becomes revocation-pending. The node is marked first, in its own transaction, then
// each device is updated in its own: the call is idempotent, and rerunning it (ResumeRevocations) finishes
// a sweep a crash interrupted.
func (v *Vault) RevokeNode(nodeID string) (RevocationReport, error) {
	if err := sealing.ValidateID("node id", nodeID); err != nil {
		return RevocationReport{}, fmt.Errorf("revoke: %w", err)
	}
	now := v.clk.Now()
	if err := v.store.Update(func(tx Tx) error { return tx.MarkRevoked(nodeID, now) }); err != nil {
		return RevocationReport{}, fmt.Errorf("revoke %q: %w", nodeID, err)
	}
	// Read the index only after the mark committed: any Put that commits later sees the mark (or conflicts
	// on it and retries), and any that committed earlier is in the index.
	var devs []string
	if err := v.store.View(func(tx Tx) error {
		var err error
		devs, err = tx.DevicesOf(nodeID)
		return err
	}); err != nil {
		return RevocationReport{}, fmt.Errorf("revoke %q: %w", nodeID, err)
	}
	rep := RevocationReport{NodeID: nodeID}
	for _, d := range devs {
		var changed, cancelled bool
		err := v.store.Update(func(tx Tx) error {
			rec, err := tx.Device(d)
			if err != nil {
				return err
			}
			var out *DeviceRecord
			out, changed, cancelled = decideRevoke(rec, nodeID, now)
			if !changed {
				return nil
			}
			return tx.PutDevice(out)
		})
		if err != nil {
			return rep, fmt.Errorf("revoke %q: device %s: %w", nodeID, d, err)
		}
		if changed {
			rep.Devices = append(rep.Devices, d)
		}
		if cancelled {
			rep.CancelledTransfers = append(rep.CancelledTransfers, d)
			v.log.Warn("credential transfer cancelled by revocation", "device", d, "node", nodeID)
		}
	}
	v.log.Warn("node revoked in credential vault", "node", nodeID, "devices", len(rep.Devices),
		"cancelled_transfers", len(rep.CancelledTransfers))
	return rep, nil
}

// ResumeRevocations reruns RevokeNode for every revoked node (at start-up, after a crash mid-sweep).
func (v *Vault) ResumeRevocations() ([]RevocationReport, error) {
	var nodes []string
	if err := v.store.View(func(tx Tx) error {
		var err error
		nodes, err = tx.RevokedNodes()
		return err
	}); err != nil {
		return nil, err
	}
	var reps []RevocationReport
	for _, n := range nodes {
		rep, err := v.RevokeNode(n)
		if err != nil {
			return reps, err
		}
		if len(rep.Devices) > 0 || len(rep.CancelledTransfers) > 0 {
			reps = append(reps, rep)
		}
	}
	return reps, nil
}

// IsRevoked reports whether the vault has revoked nodeID.
func (v *Vault) IsRevoked(nodeID string) (bool, error) {
	var ok bool
	err := v.store.View(func(tx Tx) error {
		var err error
		ok, err = tx.Revoked(nodeID)
		return err
	})
	return ok, err
}

// CompleteRotation records that by, a trusted owner, rotated (deviceID, purpose): it set a new secret on
// the miner and sealed it to every current owner (newEnvelopes, one per owner, sealed to their current
// keys), which become the new generation; or, with no envelopes, that it set the secret an operator staged
// with Put since the revocation. Either clears revocation-pending. It also serves routine rotation of an
// active credential (with envelopes).
func (v *Vault) CompleteRotation(deviceID, purpose, by string, newEnvelopes []*sealing.Envelope) error {
	now := v.clk.Now()
	var out *DeviceRecord
	err := v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		ids := []string{by}
		if rec != nil {
			ids = append(ids, ownerIDs(rec.Owners)...)
		}
		rev, err := revokedOf(tx, ids...)
		if err != nil {
			return err
		}
		out, err = decideRotation(rec, purpose, by, newEnvelopes, rev, now)
		if err != nil {
			return err
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	c, _ := out.credential(purpose)
	v.log.Info("credential rotated", "org", out.OrgID, "device", deviceID, "purpose", purpose, "node", by,
		"generation", c.Generation, "resealed", len(newEnvelopes) > 0)
	return nil
}

// Status returns the device's credential state for the API (ErrUnknownDevice if none).
func (v *Vault) Status(deviceID string) (Status, error) {
	var st Status
	err := v.store.View(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("status %s: %w", deviceID, ErrUnknownDevice)
		}
		st = status(rec)
		return nil
	})
	return st, err
}

// Pending returns the status of every device needing work (a transfer in progress, or revocation-pending
// credentials), sorted by device: the queue the rotation and transfer drivers work from.
func (v *Vault) Pending() ([]Status, error) {
	var out []Status
	err := v.store.View(func(tx Tx) error {
		devs, err := tx.PendingDevices()
		if err != nil {
			return err
		}
		for _, d := range devs {
			rec, err := tx.Device(d)
			if err != nil {
				return err
			}
			if rec != nil {
				out = append(out, status(rec))
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out, err
}

// Delete removes the credential (deviceID, purpose) and its envelopes; the device's record goes with its
// last credential.
func (v *Vault) Delete(deviceID, purpose string) error {
	now := v.clk.Now()
	err := v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		out, err := decideDelete(rec, purpose, now)
		if err != nil {
			return err
		}
		if out == nil {
			return tx.DeleteDevice(deviceID)
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	v.log.Info("credential deleted", "device", deviceID, "purpose", purpose)
	return nil
}
