package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/store"
)

func backup(t *testing.T, dataDir, out string) string {
	t.Helper()
	var msg, prog bytes.Buffer
	if err := NodeBackup(context.Background(), BackupOptions{DataDir: dataDir, Out: out, Progress: &prog}, &msg); err != nil {
		t.Fatalf("backup: %v\n%s", err, prog.String())
	}
	if !strings.Contains(prog.String(), ": done, ") {
		t.Errorf("backup progress: %q", prog.String())
	}
	return msg.String()
}

func restore(dataDir, in string, force bool) (string, error) {
	var msg, prog bytes.Buffer
	err := NodeRestore(context.Background(), RestoreOptions{DataDir: dataDir, In: in, Force: force, Progress: &prog}, &msg)
	return msg.String() + prog.String(), err
}

// Backup of a running node (its admin endpoint) and of a stopped one (its store) hold the same state;
// restored into an empty directory, the node runs under its own identity and refuses a replay of a command it
// ran before the backup: seq at or below the restored mark.
func TestNodeBackupRestoreRefusesAReplayedCommand(t *testing.T) {
	s := startSplit(t, splitOpts{})
	s.waitCommand(s.command("stop", "sim-2"), "succeeded")
	s.waitCommand(s.command("start", "sim-2"), "succeeded")
	if m := s.mark(); m != 2 {
		t.Fatalf("mark %d before the backup", m)
	}
	sent, err := s.srv.Server.Fleet().SentCommand(s.nodeID, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.readNodeStatus() // the admin endpoint is up

	dir := t.TempDir()
	live := filepath.Join(dir, "live.tar.gz")
	if msg := backup(t, s.nodeDir, live); !strings.Contains(msg, "seq high-water mark 2") || !strings.Contains(msg, "the running node (one snapshot") {
		t.Fatalf("backup of the running node: %s", msg)
	}
	if fi, err := os.Stat(live); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode %v %v, want 0600", fi.Mode(), err)
	}
	if err := NodeBackup(context.Background(), BackupOptions{DataDir: s.nodeDir, Out: live}, io.Discard); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing archive: %v", err)
	}

	s.stopNode()
	stopped := filepath.Join(dir, "stopped.tar.gz")
	if msg := backup(t, s.nodeDir, stopped); !strings.Contains(msg, "the stopped node's store") {
		t.Fatalf("backup of the stopped node: %s", msg)
	}
	a, err := readBackup(live)
	if err != nil {
		t.Fatal(err)
	}
	b, err := readBackup(stopped)
	if err != nil {
		t.Fatal(err)
	}
	if a.state.SeqMark != 2 || b.state.SeqMark != 2 || len(a.state.CommandKeys) != len(b.state.CommandKeys) || len(a.files) != len(b.files) ||
		a.state.BatchSeqs["telemetry"] == 0 {
		t.Fatalf("running vs stopped backup: %+v / %+v", a.state, b.state)
	}
	for _, n := range []string{identity.IdentityKeyFile, identity.MinerSigningKeyFile, identity.CredentialKeyFile, identity.EnrollmentFile} {
		if !bytes.Equal(a.files["identity/"+n], b.files["identity/"+n]) {
			t.Errorf("identity/%s differs between the backups", n)
		}
	}

	// Damaged or altered archives are refused before anything is written.
	if _, err := restore(filepath.Join(dir, "x"), tamper(t, live, "state.json", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"seq_mark": 2`), []byte(`"seq_mark": 0`), 1)
	}), false); !errors.Is(err, errBackupChecksum) {
		t.Fatalf("restore of an altered archive: %v", err)
	}
	trunc := filepath.Join(dir, "trunc.tar.gz")
	raw, _ := os.ReadFile(live)
	_ = os.WriteFile(trunc, raw[:len(raw)/2], 0o600)
	if _, err := restore(filepath.Join(dir, "y"), trunc, false); err == nil {
		t.Fatal("restore of a truncated archive succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		if empty, _ := emptyDir(filepath.Join(dir, "x")); !empty {
			t.Fatal("a refused restore wrote into the directory")
		}
	}
	// Not over a non-empty directory; not over another node's even with --force.
	if _, err := restore(s.nodeDir, live, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over the node's directory without --force: %v", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(filepath.Join(other, nodeIdentityDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := identity.SaveEnrollment(filepath.Join(other, nodeIdentityDir), identity.Enrollment{NodeID: "n-someone-else", OrgID: "o",
		ServerURL: "grpc://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(other, live, true); err == nil || !strings.Contains(err.Error(), "belongs to node n-someone-else") {
		t.Fatalf("restore --force over another node's directory: %v", err)
	}

	// Into an empty directory: keys 0600 under 0700, the mark restored.
	restored := filepath.Join(dir, "restored")
	msg, err := restore(restored, live, false)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, msg)
	}
	if !strings.Contains(msg, "seq high-water mark  2") || !strings.Contains(msg, "restore "+s.nodeID+": done") {
		t.Fatalf("restore output:\n%s", msg)
	}
	idDir := filepath.Join(restored, nodeIdentityDir)
	for _, p := range []string{restored, idDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v %v, want 0700", p, fi.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(idDir)
	for _, e := range ents {
		if fi, err := e.Info(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", e.Name(), fi.Mode(), err)
		}
	}
	st, err := store.OpenReadOnly(store.Options{DataDir: filepath.Join(restored, nodeStoreDir), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.BackupState()
	_ = st.Close()
	if got.SeqMark != 2 || got.BatchSeqs["telemetry"] != a.state.BatchSeqs["telemetry"]+store.RestoreBatchSeqSkip {
		t.Fatalf("restored store state %+v", got)
	}

	// The restored node runs as the same node, its telemetry accepted (batch seqs above the cloud's mark).
	writes := s.writes()
	s.nodeDir = restored
	s.startNode()
	if m := s.mark(); m != 2 {
		t.Fatalf("restored node's mark %d", m)
	}
	// The command at seq 1 exactly as the cloud signed and sent it: the restored node has no record of
	// running it, and refuses it by its seq.
	s.inject(sent)
	rec := s.audit(1, sent.GetCommandId(), pb.ResultCode_RESULT_CODE_REFUSED_SEQ)
	if !strings.Contains(rec.GetMessage(), "high-water mark 2") {
		t.Fatalf("refusal %q", rec.GetMessage())
	}
	waitFor(t, 10*time.Second, "the refusal's audit record in the cloud", func() bool {
		for _, r := range s.cloudAudit() {
			if r["command_id"] == sent.GetCommandId() && r["code"] == "refused_seq" {
				return true
			}
		}
		return false
	})
	if s.writes() != writes {
		t.Fatalf("the replayed command reached a miner")
	}
	// New commands (seq 3) run.
	s.waitCommand(s.command("reboot", "sim-1"), "succeeded")
}

// tamper rewrites one entry of an archive, keeping the manifest.
func tamper(t *testing.T, in, name string, f func([]byte) []byte) string {
	t.Helper()
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name == name {
			data = f(data)
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	_ = zw.Close()
	out := in + ".tampered"
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}
