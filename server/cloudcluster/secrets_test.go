package cloudcluster_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"github.com/hashfleet/hashfleet/server/tlsca"
)

func writeKEK(t *testing.T) (string, cloudcluster.KEK) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	k, err := cloudcluster.WriteKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

// TestKEKFile: the key file is made 0600 and never overwritten; a file group or others can read, a link, a
// missing file, or one that is not base64 of 32 non-zero bytes is refused with ErrKEK and a message saying
// what to fix.
func TestKEKFile(t *testing.T) {
	path, k := writeKEK(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	before, _ := os.ReadFile(path)
	if _, err := cloudcluster.WriteKEK(path); !errors.Is(err, cloudcluster.ErrKEK) {
		t.Fatalf("overwrite: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("an existing KEK file was changed")
	}
	got, err := cloudcluster.LoadKEK(path)
	if err != nil || got.ID() != k.ID() || len(k.ID()) != 16 {
		t.Fatalf("load: %v %q %q", err, got.ID(), k.ID())
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	world := write("world", string(before), 0o644)
	group := write("group", string(before), 0o640)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"world-readable": {world, "chmod 600"},
		"group-readable": {group, "chmod 600"},
		"symlink":        {link, "symbolic link"},
		"missing":        {filepath.Join(dir, "nope"), "no such file"},
		"not base64":     {write("garbage", "not base64 at all!\n", 0o600), "not base64"},
		"short":          {write("short", "AAECAwQ=\n", 0o600), "5 bytes, want 32"},
		"all zero":       {write("zero", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 0o600), "all zero"},
		"empty path":     {"", "no file given"},
	} {
		_, err := cloudcluster.LoadKEK(tc.path)
		if !errors.Is(err, cloudcluster.ErrKEK) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want ErrKEK mentioning %q)", name, err, tc.want)
		}
	}
	if _, err := cloudcluster.LoadKEK(world); !errors.Is(err, secretfile.ErrInsecurePermissions) {
		t.Errorf("world-readable: not ErrInsecurePermissions: %v", err)
	}
}

// TestSealOpen: a sealed value opens only under the same KEK and row name, and any flipped bit is refused.
func TestSealOpen(t *testing.T) {
	_, k := writeKEK(t)
	_, other := writeKEK(t)
	sealed, err := k.Seal("row", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Open("row", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, f := range map[string]func() ([]byte, error){
		"other row":  func() ([]byte, error) { return k.Open("other", sealed) },
		"other KEK":  func() ([]byte, error) { return other.Open("row", sealed) },
		"flipped":    func() ([]byte, error) { return k.Open("row", flipped) },
		"truncated":  func() ([]byte, error) { return k.Open("row", sealed[:5]) },
		"empty":      func() ([]byte, error) { return k.Open("row", nil) },
		"nonce only": func() ([]byte, error) { return k.Open("row", sealed[:12]) },
	} {
		if _, err := f(); !errors.Is(err, cloudcluster.ErrCorruptSecret) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSecretsAgreeAtStart: eight members (one pool each) open the shared secrets at the same moment on an
// empty database: one of them creates each secret and all of them end up with the same CA, enrollment
// secret and command keys; a command signed by one verifies with the keys another hands out.
func TestSecretsAgreeAtStart(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	_, kek := writeKEK(t)
	const n = 8
	stores := make([]*pgstore.Store, n)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	got := make([]*cloudcluster.Secrets, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s, err := cloudcluster.OpenSecrets(stores[i], kek, "org1", clock.Real())
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = s
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	created := map[string]int{}
	for _, s := range got {
		for _, c := range s.Created {
			created[c]++
		}
		if !bytes.Equal(s.CACertPEM, got[0].CACertPEM) || !bytes.Equal(s.EnrollSecret, got[0].EnrollSecret) {
			t.Fatal("members disagree on the CA or the enrollment secret")
		}
		a, b := s.Signer.Export(), got[0].Signer.Export()
		if len(a) != 1 || len(b) != 1 || a[0].Key.GetKeyId() != b[0].Key.GetKeyId() || !bytes.Equal(a[0].PrivateSeed, b[0].PrivateSeed) {
			t.Fatal("members disagree on the command keys")
		}
	}
	for _, name := range []string{"tls-ca", "enroll-secret", "command-keys/org1"} {
		if created[name] != 1 {
			t.Errorf("%s created %d times, want once", name, created[name])
		}
	}
	// One member signs; the keys another member hands to nodes verify it.
	cmd := &pb.ControlCommand{CommandId: "c1", NodeId: "n1", MonotonicSeq: 1, Actor: "user:t", Payload: []byte{1}}
	if err := got[3].Signer.Sign(cmd); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewKeyring("org1", got[5].Signer.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(cmd, time.Now()); err != nil {
		t.Fatalf("verify with another member's keys: %v", err)
	}
	// Two members' CAs issue server certificates that chain to the one CA nodes pin.
	for i, s := range got[:2] {
		ca, err := s.CA(tlsca.DefaultConfig(filepath.Join(t.TempDir(), "tls")), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ca.CAPEM(), got[0].CACertPEM) || ca.ServerCertificate().CheckSignatureFrom(ca.CACertificate()) != nil {
			t.Fatalf("member %d: server certificate not from the shared CA", i)
		}
	}
}

// TestSecretsWrongKEK: a member given another KEK fails with ErrWrongKEK naming both key ids, and the stored
// rows are exactly as before.
func TestSecretsWrongKEK(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	st := openStore(t, dsn)
	_, kek := writeKEK(t)
	_, wrong := writeKEK(t)
	if _, err := cloudcluster.OpenSecrets(st, kek, "default", nil); err != nil {
		t.Fatal(err)
	}
	before := dumpSecrets(t, st)
	_, err := cloudcluster.OpenSecrets(st, wrong, "default", nil)
	if !errors.Is(err, cloudcluster.ErrWrongKEK) || !strings.Contains(err.Error(), kek.ID()) || !strings.Contains(err.Error(), wrong.ID()) {
		t.Fatalf("wrong KEK: %v", err)
	}
	if after := dumpSecrets(t, st); after != before {
		t.Fatalf("rows changed:\n%s\n%s", before, after)
	}
	if _, err := cloudcluster.OpenSecrets(st, kek, "default", nil); err != nil {
		t.Fatalf("the right KEK after a wrong one: %v", err)
	}
}

func dumpSecrets(t *testing.T, st *pgstore.Store) string {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `SELECT name, kek_id, encode(public, 'hex'), encode(sealed, 'hex'), version FROM cluster_secrets ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var name, kek, pub, sealed string
		var v int64
		if err := rows.Scan(&name, &kek, &pub, &sealed, &v); err != nil {
			t.Fatal(err)
		}
		b.WriteString(name + " " + kek + " " + pub + " " + sealed + "\n")
	}
	return b.String()
}

// TestSecretsGarbage: garbage in the secrets table (bytes that do not open, a sealed value moved to another
// row, plaintext that does not decode, a CA whose key is not its certificate's, a short enrollment secret,
// an oversized row) is refused with a clear error at start, and nothing is overwritten.
func TestSecretsGarbage(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	_, kek := writeKEK(t)
	otherCert, _, err := tlsca.NewCAPEM(time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(name string, plain []byte) []byte {
		b, err := kek.Seal(name, plain)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		sql  string
		args func(st *pgstore.Store) []any
		want error
		msg  string
	}{
		"random sealed bytes": {`UPDATE cluster_secrets SET sealed = $1 WHERE name = 'enroll-secret'`,
			func(*pgstore.Store) []any { return []any{bytes.Repeat([]byte{0xAB}, 60)} }, cloudcluster.ErrCorruptSecret, "does not authenticate"},
		"row swapped": {`UPDATE cluster_secrets SET sealed = (SELECT sealed FROM cluster_secrets WHERE name = 'tls-ca') WHERE name = 'enroll-secret'`,
			func(*pgstore.Store) []any { return nil }, cloudcluster.ErrCorruptSecret, "copied from another row"},
		"keys not JSON": {`UPDATE cluster_secrets SET sealed = $1 WHERE name = 'command-keys/default'`,
			func(*pgstore.Store) []any { return []any{seal("command-keys/default", []byte("{not json"))} }, cloudcluster.ErrCorruptSecret, "command-keys/default"},
		"keys of another org": {`UPDATE cluster_secrets SET sealed = $1 WHERE name = 'command-keys/default'`,
			func(*pgstore.Store) []any {
				return []any{seal("command-keys/default", []byte(`{"org_id":"evil","keys":[{"key":{},"seed":""}]}`))}
			}, cloudcluster.ErrCorruptSecret, `org "evil"`},
		"bad key seed": {`UPDATE cluster_secrets SET sealed = $1 WHERE name = 'command-keys/default'`,
			func(*pgstore.Store) []any {
				return []any{seal("command-keys/default", []byte(`{"org_id":"default","keys":[{"key":{"keyId":"default/k_x"},"seed":"AAAA"}]}`))}
			}, cloudcluster.ErrCorruptSecret, "command-keys/default"},
		"CA certificate garbage": {`UPDATE cluster_secrets SET public = $1 WHERE name = 'tls-ca'`,
			func(*pgstore.Store) []any {
				return []any{[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}
			},
			cloudcluster.ErrCorruptSecret, "tls-ca"},
		"CA key of another certificate": {`UPDATE cluster_secrets SET public = $1 WHERE name = 'tls-ca'`,
			func(*pgstore.Store) []any { return []any{otherCert} }, cloudcluster.ErrCorruptSecret, "does not match"},
		"short enrollment secret": {`UPDATE cluster_secrets SET sealed = $1 WHERE name = 'enroll-secret'`,
			func(*pgstore.Store) []any { return []any{seal("enroll-secret", []byte("short"))} }, cloudcluster.ErrCorruptSecret, "5 bytes"},
		"oversized row": {`UPDATE cluster_secrets SET public = $1 WHERE name = 'tls-ca'`,
			func(*pgstore.Store) []any { return []any{bytes.Repeat([]byte{1}, 2<<20)} }, pgstore.ErrSecretInvalid, "larger than"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := openStore(t, pg.NewDatabase(t))
			if _, err := cloudcluster.OpenSecrets(st, kek, "default", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Pool().Exec(context.Background(), tc.sql, tc.args(st)...); err != nil {
				t.Fatal(err)
			}
			before := dumpSecrets(t, st)
			_, err := cloudcluster.OpenSecrets(st, kek, "default", nil)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if after := dumpSecrets(t, st); after != before {
				t.Fatal("a refused start changed the stored secrets")
			}
		})
	}
}
