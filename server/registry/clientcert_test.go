package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A node that enrolls with a TLS key gets, with its api_key, a client certificate for that key naming it;
// the TLS key is bound at the first Enroll like the other public keys.
func TestEnrollIssuesClientCertificate(t *testing.T) {
	f := newFixture(t)
	ca, err := tlsca.LoadOrCreate(tlsca.DefaultConfig(filepath.Join(t.TempDir(), "tls")), f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.reg.cfg.IssueClientCert = ca.IssueClientCert
	ctx := context.Background()
	code, _, err := f.reg.MintCode("site-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	k := newNodeKeys()
	tlsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&tlsKey.PublicKey)
	req := k.request(code)
	req.TlsPublicKey = der
	resp, err := f.reg.Enroll(ctx, req)
	if err != nil || len(resp.GetClientCertificatePem()) != 0 {
		t.Fatalf("first Enroll: %v, cert %d bytes before confirmation", err, len(resp.GetClientCertificatePem()))
	}
	// Another TLS key on a later poll is refused (someone else polling with the code and identity key).
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	swapped := k.request(code)
	swapped.TlsPublicKey = otherDER
	if _, err := f.reg.Enroll(ctx, swapped); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("poll with another TLS key: %v, want FailedPrecondition", err)
	}
	if _, err := f.reg.Confirm(resp.GetNodeId(), resp.GetIdentityFingerprint()); err != nil {
		t.Fatal(err)
	}
	resp, err = f.reg.Enroll(ctx, req)
	if err != nil || !resp.GetConfirmed() || resp.GetApiKey() == "" {
		t.Fatalf("Enroll after confirm: %v", err)
	}
	if _, err := tlsca.CheckClientCert(resp.GetClientCertificatePem(), ca.CAPEM(), resp.GetNodeId(), &tlsKey.PublicKey, f.clk.Now()); err != nil {
		t.Fatalf("issued client certificate: %v", err)
	}

	// Unusable TLS keys are refused at the first Enroll.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	k2 := newNodeKeys()
	idDER, _ := x509.MarshalPKIXPublicKey(k2.id.Public().(ed25519.PublicKey))
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	for name, c := range map[string]struct {
		der  []byte
		want codes.Code
	}{
		"garbage":      {[]byte{1, 2, 3}, codes.InvalidArgument},
		"P-384":        {p384DER, codes.InvalidArgument},
		"identity key": {idDER, codes.InvalidArgument},
		"ed25519":      {edDER, codes.OK},
	} {
		code, _, err := f.reg.MintCode("site-b", 0)
		if err != nil {
			t.Fatal(err)
		}
		r := k2.request(code)
		r.TlsPublicKey = c.der
		if _, err := f.reg.Enroll(ctx, r); status.Code(err) != c.want {
			t.Errorf("%s: Enroll = %v, want %v", name, err, c.want)
		}
	}
}
