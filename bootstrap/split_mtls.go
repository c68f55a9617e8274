package bootstrap

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/server/tlsca"
)

// Split mode's optional mTLS (`hashfleet server --gateway-mtls`), node side. A node enrolling over TLS makes
// a TLS client key of its own (identity/tls.key, ECDSA P-256, 0600) and sends its public half; with its
// api_key the server returns a client certificate for it from the server's CA, naming the node, which the
// node checks and keeps (identity/tls.crt, 0600) and presents on every connection from then on. A server
// without --gateway-mtls does not ask for it; one with it refuses every stream, Challenge and OpenSession
// without it.

// enrollTLSKey makes (or reuses) the node's TLS client key and puts its public half in the request; nil
// without TLS.
func enrollTLSKey(idDir string, req *pb.EnrollRequest, useTLS bool) (*ecdsa.PrivateKey, error) {
	if !useTLS {
		return nil, nil
	}
	key, _, err := identity.LoadOrCreateTLSKey(idDir)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	req.TlsPublicKey = der
	return key, nil
}

// saveClientCert checks the client certificate of a confirmed EnrollResponse (chains to the pinned CA, names
// the node, is for the node's TLS key) and stores it. A server without a CA sends none; a certificate that
// does not check is not kept (the node then works only with a server that does not require mTLS), and the
// reason is returned for the caller to print: the api_key was issued once and must still be saved.
func saveClientCert(idDir string, resp *pb.EnrollResponse, caPEM []byte, key *ecdsa.PrivateKey, now time.Time) (saved bool, err error) {
	certPEM := resp.GetClientCertificatePem()
	if len(certPEM) == 0 || key == nil {
		return false, nil
	}
	if _, err := tlsca.CheckClientCert(certPEM, caPEM, resp.GetNodeId(), &key.PublicKey, now); err != nil {
		return false, err
	}
	if err := identity.SaveClientCert(idDir, certPEM); err != nil {
		return false, err
	}
	return true, nil
}

// reportClientCert prints what enrollment did about the client certificate.
func reportClientCert(out io.Writer, idDir string, saved bool, err error) {
	switch {
	case err != nil:
		fmt.Fprintf(out, "WARNING: the client certificate the server sent is not usable (%v); not kept: this node cannot connect to a server that requires mTLS\n", err)
	case saved:
		fmt.Fprintf(out, "client certificate for mTLS saved in %s\n", filepath.Join(idDir, identity.TLSCertFile))
	}
}

// nodeClientCert returns the option presenting the node's client certificate, if it has a usable one. A
// node without one (enrolled without TLS, or before certificates were issued) connects without; a server
// requiring mTLS then refuses it with a clear error. An expired certificate is not presented (the server
// would fail the handshake with no explanation) and logged instead.
func nodeClientCert(idDir string, now time.Time, log *slog.Logger) ([]tlsca.ClientOption, error) {
	cert, err := identity.LoadClientCert(idDir)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case now.After(cert.Leaf.NotAfter):
		log.Error("the node's client certificate has expired; connecting without it (a server requiring mTLS refuses this node until it enrolls again)",
			slog.Time("expired", cert.Leaf.NotAfter))
		return nil, nil
	case cert.Leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		log.Warn("the node's client certificate expires soon; a server requiring mTLS will refuse this node after that until it enrolls again",
			slog.Time("expires", cert.Leaf.NotAfter))
	}
	return []tlsca.ClientOption{tlsca.WithClientCertificate(cert)}, nil
}
