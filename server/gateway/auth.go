package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MetadataNode is the gRPC metadata key every node stream carries its node id in.
const MetadataNode = "x-hashfleet-node"

// Authenticator decides which node a stream belongs to, from the stream context's metadata. It returns the
// node id, or an error: a gRPC status error is returned to the node as is, anything else as Unauthenticated.
// Enrollment and session tokens (split mode) plug in here.
type Authenticator interface {
	Authenticate(ctx context.Context) (nodeID string, err error)
}

// AuthenticatorFunc adapts a function.
type AuthenticatorFunc func(ctx context.Context) (string, error)

func (f AuthenticatorFunc) Authenticate(ctx context.Context) (string, error) { return f(ctx) }

// TrustNodeMetadata is combined mode's authenticator: it trusts the x-hashfleet-node metadata as is, with no
// token. Only choose it where the node is the same process or on loopback (never on a listener other hosts
// can reach).
func TrustNodeMetadata() Authenticator {
	return AuthenticatorFunc(func(ctx context.Context) (string, error) {
		id, err := NodeFromMetadata(ctx)
		if err != nil {
			return "", status.Error(codes.Unauthenticated, err.Error())
		}
		return id, nil
	})
}

// RejectAll refuses every stream. It is the default until enrollment and session tokens exist: a server
// that cannot authenticate nodes must not trust them.
func RejectAll() Authenticator {
	return AuthenticatorFunc(func(context.Context) (string, error) {
		return "", status.Errorf(codes.Unauthenticated, "%v: enrollment is not implemented yet; run combined mode", ErrNotEnrolled)
	})
}

// NodeFromMetadata reads and validates the node id from the incoming metadata.
func NodeFromMetadata(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataNode)
	if len(vals) == 0 || vals[0] == "" {
		return "", ErrNoNodeMetadata
	}
	if len(vals) > 1 {
		return "", fmt.Errorf("%s given %d times", MetadataNode, len(vals))
	}
	if err := store.ValidNodeID(vals[0]); err != nil {
		return "", fmt.Errorf("%s: %w", MetadataNode, err)
	}
	return vals[0], nil
}

// BearerAuthenticator is split mode's shape: verify checks the session token from the authorization
// metadata ("Bearer <token>") and returns the node it was minted for (enroll.Service.VerifySession with the
// clock's now fits), which must match x-hashfleet-node. A missing, invalid or mismatched token is
// Unauthenticated; tokenless streams are refused.
func BearerAuthenticator(verify func(token string) (nodeID string, err error)) Authenticator {
	return AuthenticatorFunc(func(ctx context.Context) (string, error) {
		claimed, err := NodeFromMetadata(ctx)
		if err != nil {
			return "", status.Error(codes.Unauthenticated, err.Error())
		}
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) != 1 {
			return "", status.Error(codes.Unauthenticated, "missing authorization metadata: a session token is required")
		}
		scheme, tok, ok := strings.Cut(vals[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", status.Error(codes.Unauthenticated, "authorization metadata must be \"Bearer <session token>\"")
		}
		node, err := verify(tok)
		if err != nil {
			return "", status.Errorf(codes.Unauthenticated, "session token: %v", err)
		}
		if node != claimed {
			return "", status.Errorf(codes.Unauthenticated, "session token is for node %q, stream claims %q", node, claimed)
		}
		return node, nil
	})
}
