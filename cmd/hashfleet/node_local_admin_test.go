package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/node/localui"
)

func TestNodeSetLocalAdmin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("site staff only 7731\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runNodeSetLocalAdmin(context.Background(), []string{"--data-dir", dir, "--user", "ops", "--password-file", pw}); err != nil {
		t.Fatal(err)
	}
	ui := bootstrap.LocalUIDir(dir)
	fi, err := os.Stat(filepath.Join(ui, localui.CredentialFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v, want mode 0600", fi, err)
	}
	if di, err := os.Stat(ui); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("local UI dir: %v %v, want 0700", di, err)
	}
	if u, err := localui.LocalAdmin(ui); err != nil || u != "ops" {
		t.Fatalf("local admin %q %v", u, err)
	}
	if err := os.WriteFile(pw, []byte("password1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runNodeSetLocalAdmin(context.Background(), []string{"--data-dir", dir, "--password-file", pw}); !errors.Is(err, localui.ErrWeakPassword) {
		t.Fatalf("weak password: %v", err)
	}
	if err := runNodeSetLocalAdmin(context.Background(), []string{"--password-file", pw}); err == nil {
		t.Fatal("no --data-dir accepted")
	}
	if err := runNodeSetLocalAdmin(context.Background(), []string{"--data-dir", dir, "--user", "bad user", "--password-file", pw}); !errors.Is(err, localui.ErrInvalidUser) {
		t.Fatalf("bad user: %v", err)
	}
	if err := runNodeSetLocalAdmin(context.Background(), []string{"--data-dir", dir, "--password-file", filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing password file accepted")
	}
	if u, _ := localui.LocalAdmin(ui); u != "ops" {
		t.Fatalf("a refused change replaced the credential: %q", u)
	}
}
