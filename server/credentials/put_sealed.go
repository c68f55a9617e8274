package credentials

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// PutSealed stores envelopes sealed earlier (by the caller, to owners, one each, bound to deviceID and
// purpose) as the credential's new generation: Put for a secret the cloud no longer holds in the clear. A
// miner login rotated by command is stored this way once the miner confirmed it. The same owner rules as
// Put apply.
func (v *Vault) PutSealed(orgID, deviceID, purpose string, owners []NodeKey, envs []*sealing.Envelope) error {
	if orgID == "" {
		return fmt.Errorf("put sealed: org id is empty: %w", sealing.ErrInvalidBinding)
	}
	owners, err := validateOwners(orgID, owners)
	if err != nil {
		return fmt.Errorf("put sealed %s/%s: %w", deviceID, purpose, err)
	}
	if len(envs) != len(owners) {
		return fmt.Errorf("put sealed %s/%s: %d envelopes for %d owners: %w", deviceID, purpose, len(envs), len(owners), sealing.ErrInvalidBinding)
	}
	seen := map[string]bool{}
	for _, e := range envs {
		if e == nil || e.DeviceID != deviceID || e.Purpose != purpose || seen[e.NodeID] {
			return fmt.Errorf("put sealed %s/%s: an envelope is bound elsewhere or repeated: %w", deviceID, purpose, sealing.ErrInvalidBinding)
		}
		seen[e.NodeID] = true
	}
	for _, k := range owners {
		if !seen[k.NodeID] {
			return fmt.Errorf("put sealed %s/%s: no envelope for owner %s: %w", deviceID, purpose, k.NodeID, sealing.ErrInvalidBinding)
		}
	}
	now := v.clk.Now()
	err = v.store.Update(func(tx Tx) error {
		rec, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		rev, err := revokedOf(tx, ownerIDs(owners)...)
		if err != nil {
			return err
		}
		out, err := decidePut(rec, orgID, deviceID, purpose, owners, envs, rev, now)
		if err != nil {
			return err
		}
		return tx.PutDevice(out)
	})
	if err != nil {
		return err
	}
	v.log.Info("sealed credential stored", "org", orgID, "device", deviceID, "purpose", purpose, "owners", ownerIDs(owners))
	return nil
}
