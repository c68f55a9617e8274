package gateway

import "context"

// AuthenticateStream authenticates a stream of another node-facing service on the gateway's listener (the
// Artifacts service) exactly as the gateway's own streams are: session token, node metadata and, where
// required, the client certificate. kind labels refusals in the metrics.
func (g *Gateway) AuthenticateStream(ctx context.Context, kind string) (string, error) {
	return g.authenticate(ctx, kind)
}
