package proto

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
)

// HandOver replaces the rig's paired key with next, authenticated by this driver's current credentials (the
// node's JWT, or the password). The rig keeps one auth key, so the replacement is also the moment this
// driver's key stops being accepted: it is how a node that is still trusted hands a rig to the node that
// takes the device over (next is that node's miner-signing key), and how a node rotating its own
// miner-signing key moves the rig to the new one. After it the driver is useless until rebuilt with the key
// matching next (or with the password).
func (d *Driver) HandOver(ctx context.Context, next ed25519.PublicKey) error {
	if len(next) != ed25519.PublicKeySize {
		return fmt.Errorf("hand over %s: key is %d bytes, want an ed25519 key of %d: %w", d.id, len(next), ed25519.PublicKeySize, ErrNoCredentials)
	}
	der, err := x509.MarshalPKIXPublicKey(next)
	if err != nil {
		return fmt.Errorf("hand over %s: encode key: %w", d.id, err)
	}
	req := map[string]string{"public_key": base64.StdEncoding.EncodeToString(der)}
	if _, err := d.call(ctx, http.MethodPost, "/api/v1/pairing/auth-key", nil, req, nil, true); err != nil {
		return fmt.Errorf("hand over %s: %w", d.id, err)
	}
	d.jwt = ""
	return nil
}
