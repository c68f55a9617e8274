package grains

import (
	"errors"
	"log/slog"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
)

// Rotation after a revocation: a credential a revoked node could read stays revocation-pending until a
// trusted owner has set a new secret on the miner.
//
//	update_password (a new random login, issued by the server's rotation sweep, see server/rotation.go)
//	    ─▶ miner SUCCEEDED ─▶ promoteLogins: PutSealed stages the new "miner-login" generation
//	update_pools with a new pool password (entered by the operator: the cloud cannot invent one)
//	    ─▶ Put stages it at issue ─▶ miner SUCCEEDED
//	either ─▶ completeRotations: the reporting node is a trusted owner, the miner confirmed the staged
//	    secret ─▶ Vault.CompleteRotation(device, purpose, node, nil) clears revocation-pending

// rotationVault is the part of server/credentials.Vault completing a rotation uses.
type rotationVault interface {
	Status(deviceID string) (credentials.Status, error)
	CompleteRotation(deviceID, purpose, by string, newEnvelopes []*sealing.Envelope) error
}

// rotatedPurposes lists the credentials a successful command of rec set on the miner.
func rotatedPurposes(rec *pb.CommandRecord, miner string) []string {
	spec := rec.GetSpec()
	switch spec.GetAction() {
	case pb.Action_ACTION_UPDATE_PASSWORD:
		return []string{sealing.PurposeMinerLogin}
	case pb.Action_ACTION_UPDATE_POOLS:
		var out []string
		seen := map[string]bool{}
		for _, s := range spec.GetSealed() {
			if s.GetMinerId() == miner && !seen[s.GetPurpose()] {
				seen[s.GetPurpose()] = true
				out = append(out, s.GetPurpose())
			}
		}
		return out
	}
	return nil
}

// completeRotations clears, for every miner of results that confirmed rec's new secret, the credentials
// that were revocation-pending with that secret staged. Called after promoteLogins staged the new login.
func (t *CommandTracker) completeRotations(rec *pb.CommandRecord, node string, results []*pb.MinerResult) {
	rv, ok := t.cfg.Vault.(rotationVault)
	if !ok || t.cfg.Vault == nil {
		return
	}
	for _, r := range results {
		if r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			continue
		}
		purposes := rotatedPurposes(rec, r.GetMinerId())
		if len(purposes) == 0 {
			continue
		}
		st, err := rv.Status(r.GetMinerId())
		if err != nil {
			if !errors.Is(err, credentials.ErrUnknownDevice) {
				t.log.Error("rotation: credential state unreadable", slog.String("miner", r.GetMinerId()), slog.Any("err", err))
			}
			continue
		}
		for _, c := range st.Credentials {
			if c.State != credentials.StateRevocationPending || !c.NewSecretStaged || !slices.Contains(purposes, c.Purpose) {
				continue
			}
			if err := rv.CompleteRotation(r.GetMinerId(), c.Purpose, node, nil); err != nil {
				t.log.Error("rotation: the miner has the new secret but the vault did not clear the credential",
					slog.String("command", rec.GetCommandId()), slog.String("miner", r.GetMinerId()), slog.String("purpose", c.Purpose),
					slog.String("node", node), slog.Any("err", err))
				continue
			}
			t.log.Info("credential rotated after revocation", slog.String("command", rec.GetCommandId()),
				slog.String("miner", r.GetMinerId()), slog.String("purpose", c.Purpose), slog.String("node", node))
		}
	}
}
