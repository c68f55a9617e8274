package grains

import (
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
)

// Miner password rotation (update_password):
//
//	API ─CommandRequest{NewPassword}─▶ Org.onIssue ─ sealNewLogin: for each miner and each owner, two
//	    envelopes of the new password: "miner-login-new" (the node opens it to rotate) and "miner-login" (the
//	    login to store once the miner confirmed) ─▶ CommandRecord.spec.sealed ─▶ store, signed payload
//	node: opens "miner-login-new", the driver rotates the login on the miner and logs in with it from then on
//	CommandTracker.onReport: a miner SUCCEEDED ─▶ promoteLogins: Vault.PutSealed(miner, "miner-login", its
//	    envelopes) ─▶ the next ownership map carries them. FAILED: nothing changes; the vault keeps the old
//	    login, and the miner's result says why the miner refused.
//
// The plaintext lives only in the request; the record keeps envelopes only.

// MaxPasswordLen bounds a miner password.
const MaxPasswordLen = 64

// sealedPutter stores pre-sealed envelopes (server/credentials.Vault has it).
type sealedPutter interface {
	PutSealed(orgID, deviceID, purpose string, owners []credentials.NodeKey, envs []*sealing.Envelope) error
}

// validatePassword: update_password carries a password of 1..MaxPasswordLen bytes; no other action does.
func validatePassword(req CommandRequest) error {
	switch {
	case req.Action != pb.Action_ACTION_UPDATE_PASSWORD && len(req.NewPassword) > 0:
		return fmt.Errorf("%w: password is only valid with update_password", ErrInvalidCommand)
	case req.Action == pb.Action_ACTION_UPDATE_PASSWORD && (len(req.NewPassword) == 0 || len(req.NewPassword) > MaxPasswordLen):
		return fmt.Errorf("%w: update_password needs a password of 1 to %d bytes", ErrInvalidCommand, MaxPasswordLen)
	}
	return nil
}

// sealNewLogin seals pw, for every miner of rec and every owner of each, as "miner-login-new" and
// "miner-login" envelopes in rec's spec.sealed.
func (o *Org) sealNewLogin(rec *pb.CommandRecord, pw []byte) error {
	spec := rec.GetSpec()
	if spec.GetAction() != pb.Action_ACTION_UPDATE_PASSWORD {
		return nil
	}
	if o.cfg.NodeKey == nil {
		return fmt.Errorf("%w: miner logins are sealed to the owning nodes, and this server has no node keys", ErrInvalidCommand)
	}
	for _, miner := range rec.GetMinerIds() {
		var recips []sealing.Recipient
		for _, n := range o.commandOwners(miner) {
			k, err := o.cfg.NodeKey(n)
			if err != nil {
				return fmt.Errorf("%w: new login of %s for node %s: %w: %v", ErrInvalidCommand, miner, n, ErrNoCredentialKey, err)
			}
			pub, err := sealing.ParsePublicKey(k.PublicKey)
			if err != nil {
				return fmt.Errorf("%w: new login of %s for node %s: %v", ErrInvalidCommand, miner, n, err)
			}
			recips = append(recips, sealing.Recipient{NodeID: n, PublicKey: pub})
		}
		if len(recips) == 0 {
			return fmt.Errorf("%w: miner %s has no owning node to seal its new login to", ErrInvalidCommand, miner)
		}
		for _, purpose := range []string{sealing.PurposeMinerLoginNew, sealing.PurposeMinerLogin} {
			envs, err := sealing.SealAll(recips, miner, purpose, pw)
			if err != nil {
				return fmt.Errorf("%w: seal the new login of %s: %v", ErrInvalidCommand, miner, err)
			}
			for _, e := range envs {
				raw, err := e.MarshalBinary()
				if err != nil {
					return fmt.Errorf("%w: seal the new login of %s: %v", ErrInvalidCommand, miner, err)
				}
				spec.Sealed = append(spec.Sealed, &pb.SealedSecret{MinerId: miner, Purpose: purpose, Envelope: raw})
			}
		}
	}
	return nil
}

// promoteLogins stores, for every miner whose update_password succeeded in results, the "miner-login"
// envelopes its command carries as the miner's login in the vault.
func (t *CommandTracker) promoteLogins(rec *pb.CommandRecord, results []*pb.MinerResult) {
	if rec.GetSpec().GetAction() != pb.Action_ACTION_UPDATE_PASSWORD {
		return
	}
	sp, ok := t.cfg.Vault.(sealedPutter)
	if t.cfg.Vault == nil || !ok || t.cfg.NodeKey == nil {
		t.log.Error("a miner login was rotated but this server cannot store it", slog.String("command", rec.GetCommandId()))
		return
	}
	for _, r := range results {
		if r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			continue
		}
		miner := r.GetMinerId()
		var envs []*sealing.Envelope
		var owners []credentials.NodeKey
		for _, s := range rec.GetSpec().GetSealed() {
			if s.GetMinerId() != miner || s.GetPurpose() != sealing.PurposeMinerLogin {
				continue
			}
			env, err := sealing.Parse(s.GetEnvelope())
			if err != nil {
				continue
			}
			k, err := t.cfg.NodeKey(env.NodeID)
			if err != nil {
				t.log.Error("rotated login not stored: owner key", slog.String("miner", miner), slog.Any("err", err))
				continue
			}
			envs, owners = append(envs, env), append(owners, k)
		}
		if err := sp.PutSealed(t.cfg.OrgID, miner, sealing.PurposeMinerLogin, owners, envs); err != nil {
			t.log.Error("the miner confirmed its new login but the vault did not take it", slog.String("command", rec.GetCommandId()),
				slog.String("miner", miner), slog.Any("err", err))
			continue
		}
		t.log.Info("miner login rotated", slog.String("command", rec.GetCommandId()), slog.String("miner", miner))
	}
}
