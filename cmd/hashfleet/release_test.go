package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/node/release"
)

// TestReleaseCommands runs keygen, sign and verify as the CLI does, then the refusals an operator sees.
func TestReleaseCommands(t *testing.T) {
	var out bytes.Buffer
	releaseOut = &out
	t.Cleanup(func() { releaseOut = os.Stdout })
	ctx := context.Background()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	art := filepath.Join(dir, "hashfleet-node.tar.gz")
	if err := os.WriteFile(art, []byte("archive bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(keys, release.PrivateKeyFile), filepath.Join(keys, release.PublicKeyFile)
	steps := [][]string{
		{"keygen", "--out", keys},
		{"sign", "--key", priv, "--artifact", art, "--version", "2.0.0"},
		{"verify", "--pub", pub, "--artifact", art, "--version", "2.0.0"},
	}
	for _, s := range steps {
		if err := runRelease(ctx, s); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	if !strings.Contains(out.String(), `OK: `+art+` is release "2.0.0"`) {
		t.Fatalf("output:\n%s", out.String())
	}

	err := runRelease(ctx, []string{"verify", "--pub", pub, "--artifact", art, "--version", "2.0.1"})
	if !errors.Is(err, release.ErrVersionMismatch) || !strings.HasPrefix(err.Error(), "REFUSED: ") {
		t.Fatalf("version mismatch: %v", err)
	}
	if err := os.WriteFile(art, []byte("archive bytez"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runRelease(ctx, []string{"verify", "--pub", pub, "--artifact", art}); !errors.Is(err, release.ErrTampered) {
		t.Fatalf("tampered: %v", err)
	}
	if err := os.Remove(art + release.SigSuffix); err != nil {
		t.Fatal(err)
	}
	if err := runRelease(ctx, []string{"verify", "--pub", pub, "--artifact", art}); !errors.Is(err, release.ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runRelease(ctx, []string{"sign", "--key", priv, "--artifact", art}); !errors.Is(err, release.ErrKeyPermissions) {
		t.Fatalf("world-readable key: %v", err)
	}
	if err := runRelease(ctx, []string{"frobnicate"}); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
}

// TestInstallScriptRefusesBadReleases runs deploy/install-node.sh, staged with DESTDIR, against a real
// signed archive of the built binary: unsigned, tampered, wrongly signed, wrong-version archives and a
// first install without a trusted verifier are refused and install nothing; the good archive installs; an
// upgrade is verified by the installed binary and a tampered one refused.
func TestInstallScriptRefusesBadReleases(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "root")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("release", "keygen", "--out", filepath.Join(dir, "keys")); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if out, err := run("release", "keygen", "--out", filepath.Join(dir, "other")); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	priv, pub := filepath.Join(dir, "keys", release.PrivateKeyFile), filepath.Join(dir, "keys", release.PublicKeyFile)
	otherPub := filepath.Join(dir, "other", release.PublicKeyFile)
	good := filepath.Join(dir, "hashfleet-node-1.0.0.tar.gz")
	writeTarGz(t, good, bin)
	if out, err := run("release", "sign", "--key", priv, "--artifact", good, "--version", "1.0.0"); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered.tar.gz")
	b, _ := os.ReadFile(good)
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(good + release.SigSuffix)
	_ = os.WriteFile(tampered+release.SigSuffix, sig, 0o644)
	unsigned := filepath.Join(dir, "unsigned.tar.gz")
	_ = os.WriteFile(unsigned, b, 0o644)

	script, err := filepath.Abs("../../deploy/install-node.sh")
	if err != nil {
		t.Fatal(err)
	}
	install := func(args ...string) (string, error) {
		cmd := exec.Command("sh", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PATH=/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	installed := filepath.Join(dest, "usr/local/bin/hashfleet")
	refused := []struct {
		name string
		args []string
		says string
	}{
		{"unsigned", []string{"--archive", unsigned, "--pub", pub, "--verifier", bin}, "no signature"},
		{"no verifier", []string{"--archive", good, "--pub", pub}, "no trusted verifier"},
		{"tampered", []string{"--archive", tampered, "--pub", pub, "--verifier", bin}, "does not match its signed manifest"},
		{"wrong key", []string{"--archive", good, "--pub", otherPub, "--verifier", bin}, "unknown key"},
		{"version", []string{"--archive", good, "--pub", pub, "--version", "1.0.1", "--verifier", bin}, "version mismatch"},
	}
	for _, c := range refused {
		out, err := install(c.args...)
		if err == nil || !strings.Contains(out, "REFUSED") || !strings.Contains(out, c.says) {
			t.Fatalf("%s: err %v, output:\n%s", c.name, err, out)
		}
		if _, err := os.Stat(installed); err == nil {
			t.Fatalf("%s: something was installed", c.name)
		}
	}
	if out, err := install("--archive", good, "--pub", pub, "--version", "1.0.0", "--verifier", bin); err != nil {
		t.Fatalf("good archive: %v\n%s", err, out)
	}
	if st, err := os.Stat(installed); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/hashfleet/release.pub")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/systemd/system/hashfleet-node.service")); err != nil {
		t.Fatal(err)
	}
	// Upgrade: no --pub, no --verifier: the installed binary and key decide.
	if out, err := install("--archive", tampered); err == nil || !strings.Contains(out, "REFUSED") {
		t.Fatalf("tampered upgrade: err %v\n%s", err, out)
	}
	if out, err := install("--archive", good); err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
}

// writeTarGz writes a tar.gz holding file as "hashfleet".
func writeTarGz(t *testing.T, path, file string) {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "hashfleet", Mode: 0o755, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
