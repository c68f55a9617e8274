package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/grains"
)

// Rotation after revocation. For every revocation-pending credential whose device still has a trusted
// owner (the partner of a warm-standby pair, or the new owner after a transfer), the server rotates what it
// can rotate by itself:
//
//	"miner-login": update_password with a new random login (sealed to the trusted owners at issue, never
//	    stored in the clear) ─▶ the owner sets it on the miner ─▶ the tracker stages it and, the miner having
//	    confirmed, calls Vault.CompleteRotation (server/grains/rotation.go)
//	pool passwords: the pool account's password is not the cloud's to invent; the credential stays pending
//	    (and listed) until the operator enters the new one with update_pools, whose success completes it.
//
// RevokeNode runs a sweep at once; POST /api/v1/credentials/rotate runs one on demand (after a transfer
// gave a device a trusted owner again, or after a miner was unreachable).

// rotationPasswordBytes is the entropy of a generated miner login (32 characters of base64url).
const rotationPasswordBytes = 24

// RotatePending starts a rotation for every revocation-pending credential the server can rotate itself.
func (s *Server) RotatePending(ctx context.Context) ([]api.CredentialRotation, error) {
	pending, err := s.vault.Pending()
	if err != nil {
		return nil, fmt.Errorf("rotate pending credentials: %w", err)
	}
	var out []api.CredentialRotation
	for _, st := range pending {
		for _, c := range st.Credentials {
			if c.State != credentials.StateRevocationPending {
				continue
			}
			out = append(out, s.rotateOne(ctx, st, c))
		}
	}
	return out, nil
}

func (s *Server) rotateOne(ctx context.Context, st credentials.Status, c credentials.CredentialStatus) api.CredentialRotation {
	r := api.CredentialRotation{DeviceID: st.DeviceID, Purpose: c.Purpose}
	switch {
	case st.Transfer != nil:
		r.Skipped = "a transfer is in progress"
		return r
	case len(st.Owners) == 0:
		r.Skipped = "no trusted owner: transfer the device to a trusted node first"
		return r
	case c.Purpose != sealing.PurposeMinerLogin:
		r.Skipped = "enter the new secret with the command that sets it (update_pools for a pool password)"
		return r
	}
	var raw [rotationPasswordBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		r.Skipped = "no randomness: " + err.Error()
		return r
	}
	pw := []byte(base64.RawURLEncoding.EncodeToString(raw[:]))
	defer sealing.Wipe(pw)
	res, err := s.fleet.IssueCommand(ctx, grains.CommandRequest{MinerIDs: []string{st.DeviceID}, Action: pb.Action_ACTION_UPDATE_PASSWORD,
		NewPassword: pw, Actor: "system:rotation"})
	var unknown *grains.UnknownMinersError
	switch {
	case errors.As(err, &unknown):
		r.Skipped = "the device is not registered"
	case err != nil:
		r.Skipped = err.Error()
	default:
		r.CommandID = res.CommandID
	}
	if r.Skipped != "" {
		s.log.Warn("credential not rotated", slog.String("miner", st.DeviceID), slog.String("purpose", c.Purpose), slog.String("reason", r.Skipped))
	} else {
		s.log.Info("credential rotation issued", slog.String("miner", st.DeviceID), slog.String("purpose", c.Purpose),
			slog.String("command", r.CommandID))
	}
	return r
}

func (c credentialAdmin) RotatePending(ctx context.Context) ([]api.CredentialRotation, error) {
	return c.s.RotatePending(ctx)
}
