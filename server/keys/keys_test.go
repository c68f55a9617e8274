package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dir string, clk clock.Clock) *Manager {
	t.Helper()
	m, err := Open(Config{Dir: dir, OrgID: "acme", Clock: clk}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeysPersistAcrossRestartsIn0600Files(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	m := open(t, dir, clk)
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %o", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName("acme"))); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %o", fi.Mode().Perm())
	}
	rot, err := m.Rotate(clk.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again := open(t, dir, clk)
	if len(again.Keys()) != 2 {
		t.Fatalf("reopened keys %v", again.Keys())
	}
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1}
	if err := again.Sign(cmd); err != nil || cmd.GetKeyId() != rot.NewKeyID {
		t.Fatalf("sign after reopen: %v %q", err, cmd.GetKeyId())
	}
	if err := signing.Verify(rot.Announcement.GetKey().GetPublicKey(), cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Revoke("acme/k_0000000000000000", clk.Now()); !errors.Is(err, signing.ErrUnknownKey) {
		t.Fatalf("revoke unknown: %v", err)
	}
	// A key file readable by others is refused.
	if err := os.Chmod(filepath.Join(dir, FileName("acme")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, OrgID: "acme"}, clk.Now()); !errors.Is(err, secretfile.ErrInsecurePermissions) {
		t.Fatalf("0644 key file: %v", err)
	}
}

// A rotation whose key file cannot be written changes nothing: the old key keeps signing.
func TestFailedWriteChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	m := open(t, dir, clk)
	before := m.Keys()[0].GetKeyId()
	secretfile.TestHookBeforeRename = func(string) error { return errors.New("disk full") }
	_, err := m.Rotate(clk.Now(), time.Hour)
	secretfile.TestHookBeforeRename = nil
	if err == nil {
		t.Fatal("rotation with a failing write succeeded")
	}
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1}
	if err := m.Sign(cmd); err != nil || cmd.GetKeyId() != before || len(m.Keys()) != 1 {
		t.Fatalf("after a failed rotation: %v key %q keys %d", err, cmd.GetKeyId(), len(m.Keys()))
	}
	if len(open(t, dir, clk).Keys()) != 1 {
		t.Fatal("the failed rotation reached the disk")
	}
}
