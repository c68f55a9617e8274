package node

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/credentials"
)

// openNewLogin opens ACTION_UPDATE_PASSWORD's new login sealed to (nodeID, minerID) into out's params
// (miners.ParamNewPassword), where the driver reads it; the caller deletes it once the write returned.
func openNewLogin(op *credentials.Opener, env *sealing.Envelope, nodeID, minerID string, out *pb.CommandSpec) error {
	purpose := sealing.PurposeMinerLoginNew
	switch {
	case env == nil:
		return fmt.Errorf("%s of %s: none sealed to node %s: %w", purpose, minerID, nodeID, ErrSealedSecret)
	case op == nil:
		return fmt.Errorf("%s of %s: %w", purpose, minerID, ErrNoCredentialKey)
	}
	if out.Params == nil {
		out.Params = map[string]string{}
	}
	err := op.Use(env, minerID, purpose, func(secret []byte) error {
		out.Params[miners.ParamNewPassword] = string(secret)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s of %s: %w: %w", purpose, minerID, ErrSealedSecret, err)
	}
	return nil
}
