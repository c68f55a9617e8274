package tlsca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

func newCA(t *testing.T, now time.Time, mut ...func(*Config)) *CA {
	t.Helper()
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "tls"))
	for _, m := range mut {
		m(&cfg)
	}
	ca, err := LoadOrCreate(cfg, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return ca
}

// handshake runs one TLS connection on loopback: the server handshakes and echoes one byte; the client
// handshakes, writes a byte and reads it back (in TLS 1.3 a refused client certificate surfaces only there).
// It returns the client's error, the server's error and the server's view of the connection.
func handshake(t *testing.T, network, addr string, server *tls.Config, client *tls.Config) (clientErr, serverErr error, state tls.ConnectionState) {
	t.Helper()
	ln, err := tls.Listen(network, addr, server)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	defer ln.Close()
	type result struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(tc, b); err != nil {
			done <- result{err: err}
			return
		}
		_, err = tc.Write(b)
		done <- result{err: err, state: tc.ConnectionState()}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(&d, network, ln.Addr().String(), client)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = conn.Write([]byte{42}); err == nil {
			b := make([]byte, 1)
			_, err = io.ReadFull(conn, b)
		}
		conn.Close()
	}
	r := <-done
	return err, r.err, r.state
}

func TestFirstStartFilesAndPermissions(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	dir := ca.cfg.Dir
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %04o", fi.Mode().Perm())
	}
	for _, f := range []string{CAKeyFile, CACertFile, ServerKeyFile, ServerCertFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, fi.Mode().Perm())
		}
	}
	c := ca.CACertificate()
	if !c.IsCA || !c.MaxPathLenZero || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA certificate: IsCA=%v MaxPathLenZero=%v alg=%v", c.IsCA, c.MaxPathLenZero, c.PublicKeyAlgorithm)
	}
	leaf := ca.ServerCertificate()
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Fatal(err)
		}
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("server EKU %v", leaf.ExtKeyUsage)
	}
	if !bytes.HasPrefix(ca.CAPEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatal("CAPEM is not PEM")
	}
}

func TestHandshakeWithPinnedCA(t *testing.T) {
	ca := newCA(t, time.Now())
	client, err := ClientTLSConfig(ca.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ network, addr, name string }{
		{"tcp4", "127.0.0.1:0", ""},
		{"tcp4", "127.0.0.1:0", "localhost"},
		{"tcp6", "[::1]:0", ""},
	} {
		t.Run(tc.network+"/"+tc.name, func(t *testing.T) {
			cc := client.Clone()
			if tc.name != "" {
				cc.ServerName = tc.name
			}
			cerr, serr, st := handshake(t, tc.network, tc.addr, ca.ServerTLSConfig(), cc)
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
			if st.Version != tls.VersionTLS13 {
				t.Fatalf("negotiated %x, want TLS 1.3", st.Version)
			}
		})
	}
}

func TestHandshakeRefusals(t *testing.T) {
	ca := newCA(t, time.Now())
	other := newCA(t, time.Now())

	pinnedOther, _ := ClientTLSConfig(other.CAPEM())
	cerr, _, _ := handshake(t, "tcp4", "127.0.0.1:0", ca.ServerTLSConfig(), pinnedOther)
	var unknown x509.UnknownAuthorityError
	if !errors.As(cerr, &unknown) {
		t.Fatalf("client pinned to another CA: %v, want x509.UnknownAuthorityError", cerr)
	}

	wrongName, _ := ClientTLSConfig(ca.CAPEM(), WithServerName("cloud.example.com"))
	cerr, _, _ = handshake(t, "tcp4", "127.0.0.1:0", ca.ServerTLSConfig(), wrongName)
	var host x509.HostnameError
	if !errors.As(cerr, &host) {
		t.Fatalf("host not in certificate: %v, want x509.HostnameError", cerr)
	}

	tls12, _ := ClientTLSConfig(ca.CAPEM())
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", ca.ServerTLSConfig(), tls12)
	if cerr == nil || serr == nil {
		t.Fatalf("TLS 1.2 client: client %v, server %v; want both to fail", cerr, serr)
	}
}

func TestReloadKeepsCA(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	cfg := ca.cfg
	again, err := LoadOrCreate(cfg, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CAPEM(), ca.CAPEM()) {
		t.Fatal("reload made a different CA")
	}
	if again.ServerCertificate().SerialNumber.Cmp(ca.ServerCertificate().SerialNumber) != 0 {
		t.Fatal("reload reissued a still-valid server certificate")
	}
	// A client that pinned the first instance's CA talks to the reloaded server.
	client, _ := ClientTLSConfig(ca.CAPEM())
	if cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", again.ServerTLSConfig(), client); cerr != nil || serr != nil {
		t.Fatalf("after reload: client %v, server %v", cerr, serr)
	}

	// New hosts: a new server certificate from the same CA.
	cfg.Hosts = []string{"cloud.example.com", "10.0.0.5"}
	moved, err := LoadOrCreate(cfg, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(moved.CAPEM(), ca.CAPEM()) {
		t.Fatal("host change replaced the CA")
	}
	leaf := moved.ServerCertificate()
	if leaf.SerialNumber.Cmp(ca.ServerCertificate().SerialNumber) == 0 || leaf.VerifyHostname("cloud.example.com") != nil ||
		leaf.VerifyHostname("10.0.0.5") != nil || leaf.VerifyHostname("localhost") == nil {
		t.Fatalf("server certificate after host change: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}

	// Near expiry: reissued at load, and by RenewIfDue on a running server, picked up by new handshakes.
	late := leaf.NotAfter.Add(-cfg.RenewBefore + time.Minute)
	renewed, err := moved.RenewIfDue(late)
	if err != nil || !renewed {
		t.Fatalf("RenewIfDue near expiry: %v, %v", renewed, err)
	}
	if moved.ServerCertificate().SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("RenewIfDue did not replace the certificate")
	}
	if renewed, err := moved.RenewIfDue(late); err != nil || renewed {
		t.Fatalf("RenewIfDue right after renewal: %v, %v", renewed, err)
	}
	reloaded, err := LoadOrCreate(cfg, late)
	if err != nil || reloaded.ServerCertificate().SerialNumber.Cmp(moved.ServerCertificate().SerialNumber) != 0 {
		t.Fatalf("reload after renewal did not pick up the renewed certificate: %v", err)
	}
}

func TestLoadRefusals(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	cfg := ca.cfg

	if err := os.Chmod(filepath.Join(cfg.Dir, CAKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(cfg, now)
	if !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod 600 "+filepath.Join(cfg.Dir, CAKeyFile)) {
		t.Fatalf("CA key 0644: %v", err)
	}
	_ = os.Chmod(filepath.Join(cfg.Dir, CAKeyFile), 0o600)

	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(cfg, now); !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("dir 0755: %v", err)
	}
	_ = os.Chmod(cfg.Dir, 0o700)

	// A world-readable server key may have leaked: it is replaced, the CA is kept.
	if err := os.Chmod(filepath.Join(cfg.Dir, ServerKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(cfg, now)
	if err != nil || !bytes.Equal(again.CAPEM(), ca.CAPEM()) ||
		again.ServerCertificate().SerialNumber.Cmp(ca.ServerCertificate().SerialNumber) == 0 {
		t.Fatalf("leaked server key not replaced: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(cfg.Dir, ServerKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("new server key mode %04o", fi.Mode().Perm())
	}

	// Only one half of the CA: refused, never silently replaced.
	if err := os.Remove(filepath.Join(cfg.Dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(cfg, now); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("CA key missing: %v", err)
	}

	// A CA key that does not match the certificate.
	ca2 := newCA(t, now)
	k, _ := os.ReadFile(filepath.Join(ca2.cfg.Dir, ServerKeyFile))
	if err := os.WriteFile(filepath.Join(ca2.cfg.Dir, CAKeyFile), k, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(ca2.cfg, now); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("mismatched CA key: %v", err)
	}

	// A CA certificate far too large to be one is corrupt, and refused without reading it all.
	ca3 := newCA(t, now)
	if err := os.WriteFile(filepath.Join(ca3.cfg.Dir, CACertFile), make([]byte, secretfile.MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(ca3.cfg, now); !errors.Is(err, ErrCorrupt) || !errors.Is(err, secretfile.ErrTooLarge) {
		t.Fatalf("oversized CA certificate: %v", err)
	}

	// A symlinked CA key is refused, never followed.
	ca4 := newCA(t, now)
	elsewhere := filepath.Join(t.TempDir(), "stolen.key")
	if err := os.Rename(filepath.Join(ca4.cfg.Dir, CAKeyFile), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(ca4.cfg.Dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(ca4.cfg, now); !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked CA key: %v", err)
	}

	for name, c := range map[string]Config{
		"no dir":         {},
		"bad host":       {Dir: "x", Hosts: []string{"a b"}},
		"empty host":     {Dir: "x", Hosts: []string{""}},
		"renew too long": {Dir: "x", ServerCertValidity: time.Hour, RenewBefore: 2 * time.Hour},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	other := newCA(t, now)

	clientCert := func(issuer *CA, nodeID string) tls.Certificate {
		t.Helper()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		certPEM, err := issuer.IssueClientCert(nodeID, &key.PublicKey, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		return tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: key}
	}
	server := ca.ServerTLSConfig(RequireClientCert())

	good, _ := ClientTLSConfig(ca.CAPEM(), WithClientCertificate(clientCert(ca, "node/1 ü")))
	cerr, serr, st := handshake(t, "tcp4", "127.0.0.1:0", server, good)
	if cerr != nil || serr != nil {
		t.Fatalf("mTLS with a node certificate: client %v, server %v", cerr, serr)
	}
	id, err := VerifiedNodeID(st)
	if err != nil || id != "node/1 ü" {
		t.Fatalf("VerifiedNodeID = %q, %v", id, err)
	}

	none, _ := ClientTLSConfig(ca.CAPEM())
	if cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", server, none); cerr == nil || serr == nil {
		t.Fatalf("mTLS without a client certificate: client %v, server %v; want both to fail", cerr, serr)
	}
	foreign, _ := ClientTLSConfig(ca.CAPEM(), WithClientCertificate(clientCert(other, "node-1")))
	if cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", server, foreign); cerr == nil || serr == nil {
		t.Fatalf("mTLS with another CA's certificate: client %v, server %v", cerr, serr)
	}
	// The server's own certificate is not a client certificate (ServerAuth only).
	srv := ca.server
	asClient, _ := ClientTLSConfig(ca.CAPEM(), WithClientCertificate(*srv))
	if cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", server, asClient); cerr == nil || serr == nil {
		t.Fatalf("mTLS with the server certificate as client certificate: client %v, server %v", cerr, serr)
	}
	if _, err := NodeIDFromCert(ca.ServerCertificate()); !errors.Is(err, ErrNotNodeCert) {
		t.Fatalf("NodeIDFromCert(server cert) = %v", err)
	}
	if _, err := VerifiedNodeID(tls.ConnectionState{}); !errors.Is(err, ErrNotNodeCert) {
		t.Fatalf("VerifiedNodeID(no chain) = %v", err)
	}
	if _, err := ca.IssueClientCert("", nil, now); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("IssueClientCert empty id = %v", err)
	}
}

func TestClientTLSConfigRefusesBadPEM(t *testing.T) {
	ca := newCA(t, time.Now())
	key, _ := os.ReadFile(filepath.Join(ca.cfg.Dir, CAKeyFile))
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.ServerCertificate().Raw})
	for name, in := range map[string][]byte{
		"empty":      nil,
		"garbage":    []byte("hello"),
		"a key":      key,
		"not a CA":   leaf,
		"broken DER": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := ClientTLSConfig(in); !errors.Is(err, ErrBadCAPEM) {
			t.Errorf("%s: ClientTLSConfig = %v, want ErrBadCAPEM", name, err)
		}
	}
	cfg, err := ClientTLSConfig(ca.CAPEM())
	if err != nil || cfg.MinVersion != tls.VersionTLS13 || cfg.InsecureSkipVerify {
		t.Fatalf("ClientTLSConfig: %+v, %v", cfg, err)
	}
}

func TestVerifyClientCertIfGiven(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	other := newCA(t, now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issue := func(issuer *CA, nodeID string) (tls.Certificate, []byte) {
		t.Helper()
		certPEM, err := issuer.IssueClientCert(nodeID, &key.PublicKey, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		return tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: key}, certPEM
	}
	server := ca.ServerTLSConfig(VerifyClientCertIfGiven())
	if server.ClientAuth != tls.VerifyClientCertIfGiven || server.ClientCAs == nil {
		t.Fatalf("ClientAuth = %v", server.ClientAuth)
	}

	// No certificate: the handshake succeeds, with no verified node.
	none, _ := ClientTLSConfig(ca.CAPEM())
	cerr, serr, st := handshake(t, "tcp4", "127.0.0.1:0", server, none)
	if cerr != nil || serr != nil {
		t.Fatalf("no client certificate: client %v, server %v", cerr, serr)
	}
	if _, err := VerifiedNodeID(st); !errors.Is(err, ErrNotNodeCert) {
		t.Fatalf("VerifiedNodeID without a certificate = %v", err)
	}
	// A certificate of this CA: verified.
	good, goodPEM := issue(ca, "n1")
	cfg, _ := ClientTLSConfig(ca.CAPEM(), WithClientCertificate(good))
	cerr, serr, st = handshake(t, "tcp4", "127.0.0.1:0", server, cfg)
	if id, err := VerifiedNodeID(st); cerr != nil || serr != nil || err != nil || id != "n1" {
		t.Fatalf("node certificate: client %v, server %v, id %q %v", cerr, serr, id, err)
	}
	// Another CA's certificate: crypto/tls does not even offer it (the server names its CA as the only one
	// acceptable), so there is no verified node...
	foreign, foreignPEM := issue(other, "n1")
	cfg, _ = ClientTLSConfig(ca.CAPEM(), WithClientCertificate(foreign))
	cerr, serr, st = handshake(t, "tcp4", "127.0.0.1:0", server, cfg)
	if _, err := VerifiedNodeID(st); cerr != nil || serr != nil || !errors.Is(err, ErrNotNodeCert) {
		t.Fatalf("foreign client certificate not offered: client %v, server %v, VerifiedNodeID %v", cerr, serr, err)
	}
	// ...and one presented anyway fails the handshake (given, so verified).
	cfg, _ = ClientTLSConfig(ca.CAPEM())
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	if cerr, serr, _ := handshake(t, "tcp4", "127.0.0.1:0", server, cfg); cerr == nil || serr == nil {
		t.Fatalf("foreign client certificate forced: client %v, server %v; want both to fail", cerr, serr)
	}

	// CheckClientCert, the node's check of what enrollment handed it.
	if c, err := CheckClientCert(goodPEM, ca.CAPEM(), "n1", &key.PublicKey, now); err != nil || c == nil {
		t.Fatalf("CheckClientCert(good) = %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, c := range map[string]struct {
		pem  []byte
		node string
		pub  any
		now  time.Time
	}{
		"other CA":    {foreignPEM, "n1", &key.PublicKey, now},
		"other node":  {goodPEM, "n2", &key.PublicKey, now},
		"other key":   {goodPEM, "n1", &otherKey.PublicKey, now},
		"expired":     {goodPEM, "n1", &key.PublicKey, now.Add(2 * 365 * 24 * time.Hour)},
		"garbage":     {[]byte("x"), "n1", &key.PublicKey, now},
		"server cert": {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.ServerCertificate().Raw}), "n1", &key.PublicKey, now},
	} {
		if _, err := CheckClientCert(c.pem, ca.CAPEM(), c.node, c.pub, c.now); !errors.Is(err, ErrNotNodeCert) {
			t.Errorf("CheckClientCert(%s) = %v, want ErrNotNodeCert", name, err)
		}
	}
}
