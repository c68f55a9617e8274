package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashfleet/hashfleet/server/cloudcluster"
)

// TestServerClusterKEK: `hashfleet server cluster-kek --out FILE` writes a 0600 key the members load, and
// refuses to overwrite it or to run without --out.
func TestServerClusterKEK(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.kek")
	if err := runServer(context.Background(), []string{"cluster-kek", "--out", path}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	before, _ := os.ReadFile(path)
	if _, err := cloudcluster.LoadKEK(path); err != nil {
		t.Fatal(err)
	}
	if err := runServer(context.Background(), []string{"cluster-kek", "--out", path}); err == nil {
		t.Fatal("overwrote an existing KEK")
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the KEK file changed")
	}
	if err := runServer(context.Background(), []string{"cluster-kek"}); err == nil {
		t.Fatal("ran without --out")
	}
}
