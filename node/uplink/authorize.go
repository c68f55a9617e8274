package uplink

import (
	"context"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
)

// ProofOfPossession returns split mode's Authorize: ask the gateway for a challenge, sign it with the node's
// identity key (sign is node/identity.Identity.SignChallenge), and trade the signature plus the api_key for
// a session token. Neither half alone opens a session: a stolen api_key without the identity key gets
// Unauthenticated, and so does a signature without the api_key.
func ProofOfPossession(nodeID, apiKey string, sign func(nonce []byte, nodeID string) []byte) func(context.Context, *grpc.ClientConn) (Credential, error) {
	return func(ctx context.Context, conn *grpc.ClientConn) (Credential, error) {
		gw := pb.NewGatewayClient(conn)
		ch, err := gw.Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID})
		if err != nil {
			return Credential{}, fmt.Errorf("challenge: %w", err)
		}
		tok, err := gw.OpenSession(ctx, &pb.OpenSessionRequest{NodeId: nodeID, ApiKey: apiKey, Nonce: ch.GetNonce(),
			Signature: sign(ch.GetNonce(), nodeID)})
		if err != nil {
			return Credential{}, fmt.Errorf("open session: %w", err)
		}
		if tok.GetToken() == "" {
			return Credential{}, fmt.Errorf("open session: the cloud returned an empty token")
		}
		return Credential{Token: tok.GetToken(), Expires: time.UnixMilli(tok.GetExpiresAtUnixMs())}, nil
	}
}
