package grains

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
	"google.golang.org/protobuf/proto"
)

// Command secrets: update_pools' pool passwords are sealed when the command is issued, before anything is
// stored or signed.
//
//	API ─CommandRequest (pools with plaintext passwords)─▶ Org.onIssue
//	    sealCommandSecrets: for each miner, owners = its node (+ the partner of a warm-standby pair)
//	    Vault.Put(org, miner, "pool-password/<i>", password, owners) ─▶ one envelope per owner
//	    CommandRecord.spec: pools[].password = "", sealed = envelopes (miner, purpose, node) ─▶ store, payload
//	node: opens the envelope bound to (itself, miner, purpose) in the miner command path, just in time
//
// The plaintext lives only in the request's memory; the record, the queued signed payload and the vault keep
// ciphertext. A retry with the same idempotency key is recognised by URL, user and priority (and whether a
// password was given): the cloud cannot compare a new password with a sealed one.

// envelopeSource reads one node's envelope of a credential (server/credentials.Vault has it).
type envelopeSource interface {
	Envelope(nodeID, deviceID, purpose string) (*sealing.Envelope, error)
}

// credentialStatus reads a device's credential state (server/credentials.Vault has it).
type credentialStatus interface {
	Status(deviceID string) (credentials.Status, error)
}

// hasPoolPasswords reports whether any pool carries a password.
func hasPoolPasswords(pools []*pb.Pool) bool {
	return slices.ContainsFunc(pools, func(p *pb.Pool) bool { return p.GetPassword() != "" })
}

// commandOwners returns the nodes that own minerID: its node, or both members of its warm-standby pair.
func (o *Org) commandOwners(minerID string) []string {
	if pid := o.pairs.ofDevice[minerID]; pid != "" {
		if p := o.pairs.byID[pid]; p != nil {
			return []string{p.rec.Members[0], p.rec.Members[1]}
		}
	}
	if d, ok := o.devices[minerID]; ok && d.device.GetNodeId() != "" {
		return []string{d.device.GetNodeId()}
	}
	return nil
}

// sealCommandSecrets replaces the plaintext pool passwords of rec's spec with envelopes sealed to every
// owner of every miner the command names. rec.Spec.Pools is replaced by copies without passwords; the
// request's pools are left as they are (the caller drops them).
func (o *Org) sealCommandSecrets(rec *pb.CommandRecord) error {
	spec := rec.GetSpec()
	if spec.GetAction() != pb.Action_ACTION_UPDATE_POOLS || !hasPoolPasswords(spec.GetPools()) {
		return nil
	}
	src, ok := o.cfg.Vault.(envelopeSource)
	if o.cfg.Vault == nil || o.cfg.NodeKey == nil || !ok {
		return fmt.Errorf("%w: pool passwords are sealed to the owning nodes, and this server has no credential vault", ErrInvalidCommand)
	}
	keys := map[string]credentials.NodeKey{}
	keyOf := func(node string) (credentials.NodeKey, error) {
		if k, ok := keys[node]; ok {
			return k, nil
		}
		k, err := o.cfg.NodeKey(node)
		if err != nil {
			return credentials.NodeKey{}, fmt.Errorf("%w: pool password for node %s: %w: %v", ErrInvalidCommand, node, ErrNoCredentialKey, err)
		}
		keys[node] = k
		return k, nil
	}
	pools := make([]*pb.Pool, len(spec.GetPools()))
	for i, p := range spec.GetPools() {
		pools[i] = proto.Clone(p).(*pb.Pool)
		pools[i].Password = ""
	}
	var sealed []*pb.SealedSecret
	for _, miner := range rec.GetMinerIds() {
		nodes := o.commandOwners(miner)
		if len(nodes) == 0 {
			return fmt.Errorf("%w: miner %s has no owning node to seal its pool passwords to", ErrInvalidCommand, miner)
		}
		owners := make([]credentials.NodeKey, 0, len(nodes))
		for _, n := range nodes {
			k, err := keyOf(n)
			if err != nil {
				return err
			}
			owners = append(owners, k)
		}
		for i, p := range spec.GetPools() {
			if p.GetPassword() == "" {
				continue
			}
			purpose := sealing.PoolPassword(i)
			if err := o.putSecret(miner, purpose, []byte(p.GetPassword()), owners); err != nil {
				return err
			}
			for _, n := range nodes {
				env, err := src.Envelope(n, miner, purpose)
				if err != nil {
					return fmt.Errorf("%w: envelope of %s/%s for %s: %v", ErrStore, miner, purpose, n, err)
				}
				raw, err := env.MarshalBinary()
				if err != nil {
					return fmt.Errorf("%w: envelope of %s/%s for %s: %v", ErrStore, miner, purpose, n, err)
				}
				sealed = append(sealed, &pb.SealedSecret{MinerId: miner, Purpose: purpose, Envelope: raw})
			}
		}
	}
	spec.Pools, spec.Sealed = pools, sealed
	return nil
}

// putSecret stores one pool password in the vault. When the device's owners changed since its last
// credential was stored (a pair formed or a device moved), the credential is replaced with one sealed to the
// new owners, unless it awaits rotation after a revocation: that state clears only through a trusted node.
func (o *Org) putSecret(miner, purpose string, pw []byte, owners []credentials.NodeKey) error {
	err := o.cfg.Vault.Put(o.cfg.OrgID, miner, purpose, pw, owners)
	if errors.Is(err, credentials.ErrOwnersMismatch) && !o.rotationPending(miner) {
		if err = o.cfg.Vault.Delete(miner, purpose); err == nil || errors.Is(err, credentials.ErrUnknownCredential) {
			err = o.cfg.Vault.Put(o.cfg.OrgID, miner, purpose, pw, owners)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, credentials.ErrNodeRevoked), errors.Is(err, credentials.ErrOwnersMismatch),
		errors.Is(err, credentials.ErrTransferPending), errors.Is(err, credentials.ErrWrongOrg):
		return fmt.Errorf("%w: cannot seal the pool password of %s: %v", ErrInvalidCommand, miner, err)
	}
	return fmt.Errorf("%w: seal the pool password of %s: %v", ErrStore, miner, err)
}

// rotationPending reports whether any credential of miner is revocation-pending (or unreadable: then the
// safe answer is yes).
func (o *Org) rotationPending(miner string) bool {
	st, ok := o.cfg.Vault.(credentialStatus)
	if !ok {
		return true
	}
	s, err := st.Status(miner)
	if err != nil {
		return !errors.Is(err, credentials.ErrUnknownDevice)
	}
	return s.State == credentials.StateRevocationPending
}

// samePassword compares a recorded pool's password with a request's: a sealed record (empty password, the
// secret in spec.sealed) matches any request that gives a password.
func samePassword(rec, req *pb.Pool) bool {
	return rec.GetPassword() == req.GetPassword() || (rec.GetPassword() == "" && req.GetPassword() != "")
}
