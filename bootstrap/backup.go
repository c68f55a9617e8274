package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/actors/progress"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/encoding/protojson"
)

// `hashfleet node backup` and `hashfleet node restore`.
//
// The archive is a gzip'd tar, written 0600, of:
//
//	MANIFEST.json            format, version, node, org, seq mark, where the state was read, and the size and
//	                         SHA-256 of every other entry (checked by restore before anything is written)
//	identity/identity.key    the node's keys and enrollment (api key, pinned CA): the files of
//	identity/miner-signing.key   <data-dir>/identity, as they are
//	identity/credential.key
//	identity/enrollment.json
//	state.json               from the node store, read in one snapshot: the command seq high-water mark, the
//	                         keyring it was reached with, the batch seq reservations, the ownership map
//
// Consistency. The identity files change only at enrollment; the store state is read in one Badger read
// transaction, so the mark and the keyring agree (a key command moves both in one transaction). Where it is
// read from depends on the node:
//
//   - stopped (store closed cleanly): the store, opened read-only;
//   - stopped after a kill -9 (store not closed): a private recovered copy of the store (Badger replays its
//     log in the copy; the node's directory is not written);
//   - running (Badger's lock held): GET /v1/backup-state on the node's loopback admin endpoint, named with
//     its token in status.json: one read transaction of the live store. A running node without the endpoint
//     (--admin-listen off) is refused: stop it, or run it with the endpoint.
//
// A backup of a running node is a snapshot: commands the node accepts afterwards move its mark past the
// backup's. After restore the node refuses every command at or below the backup's mark, and the cloud never
// reuses a seq, so what stays open is only a command issued after the backup being replayed to the restored
// node: restore the newest backup, and take one after key rotations.
//
// Restore writes into an empty data directory (or, with --force, one that belongs to the same node and is not
// running): the store state first (one synced transaction: the mark and batch seqs never move backwards), then
// the keys, the enrollment last, so a crash part-way leaves a directory the node refuses to run from rather
// than one that runs with a lower mark. The audit log, command records and the spool are not in the backup:
// the cloud holds the audit (the node's COMMAND_AUDIT events).

const (
	backupFormat       = "hashfleet-node-backup"
	backupVersion      = 1
	backupManifestName = "MANIFEST.json"
	backupStateName    = "state.json"
	backupIdentityDir  = "identity"
	// backupMaxEntry bounds one archive entry and backupMaxEntries their number: every entry is a few KiB.
	backupMaxEntry   = 4 << 20
	backupMaxEntries = 64
)

type backupManifest struct {
	Format    string       `json:"format"`
	Version   int          `json:"version"`
	CreatedAt time.Time    `json:"created_at"`
	NodeID    string       `json:"node_id"`
	OrgID     string       `json:"org_id"`
	SeqMark   uint64       `json:"seq_mark"`
	Source    string       `json:"source"`
	Files     []backupFile `json:"files"`
}

type backupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// backupStateJSON is store.BackupState on the wire (state.json, and the admin endpoint's /v1/backup-state).
type backupStateJSON struct {
	SeqMark          uint64            `json:"seq_mark"`
	SeqMarkUpdatedAt time.Time         `json:"seq_mark_updated_at,omitzero"`
	Keyring          json.RawMessage   `json:"keyring,omitempty"`   // EnrollResponse{org_id, command_keys}
	BatchSeqs        map[string]uint64 `json:"batch_seqs"`          // reserved batch seqs per stream kind
	Ownership        json.RawMessage   `json:"ownership,omitempty"` // HelloAck{devices}
}

var backupJSON = protojson.MarshalOptions{UseProtoNames: true}

func encodeBackupState(st store.BackupState) ([]byte, error) {
	w := backupStateJSON{SeqMark: st.SeqMark, SeqMarkUpdatedAt: st.SeqMarkUpdatedAt, BatchSeqs: st.BatchSeqs}
	if w.BatchSeqs == nil {
		w.BatchSeqs = map[string]uint64{}
	}
	if st.HasKeyring {
		b, err := backupJSON.Marshal(&pb.EnrollResponse{OrgId: st.OrgID, CommandKeys: st.CommandKeys})
		if err != nil {
			return nil, err
		}
		w.Keyring = b
	}
	if st.HasOwnership {
		b, err := backupJSON.Marshal(&pb.HelloAck{Devices: st.Ownership})
		if err != nil {
			return nil, err
		}
		w.Ownership = b
	}
	return json.MarshalIndent(w, "", "  ")
}

func decodeBackupState(b []byte) (store.BackupState, error) {
	var w backupStateJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return store.BackupState{}, fmt.Errorf("backup state: %w", err)
	}
	st := store.BackupState{SeqMark: w.SeqMark, SeqMarkUpdatedAt: w.SeqMarkUpdatedAt, BatchSeqs: w.BatchSeqs}
	if len(w.Keyring) > 0 {
		var kr pb.EnrollResponse
		if err := protojson.Unmarshal(w.Keyring, &kr); err != nil {
			return store.BackupState{}, fmt.Errorf("backup state: keyring: %w", err)
		}
		st.HasKeyring, st.OrgID, st.CommandKeys = true, kr.GetOrgId(), kr.GetCommandKeys()
	}
	if len(w.Ownership) > 0 {
		var own pb.HelloAck
		if err := protojson.Unmarshal(w.Ownership, &own); err != nil {
			return store.BackupState{}, fmt.Errorf("backup state: ownership: %w", err)
		}
		st.HasOwnership, st.Ownership = true, own.GetDevices()
	}
	return st, nil
}

// BackupOptions configures `hashfleet node backup`.
type BackupOptions struct {
	// DataDir is the node's data directory. Required.
	DataDir string
	// Out is the archive to write (0600). Required; an existing file is not overwritten.
	Out string
	// Progress receives progress lines (nil: none); TTY redraws one line in place.
	Progress io.Writer
	TTY      bool
	// Now stamps the manifest. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// NodeBackup writes the node's keys, enrollment and store state to one archive (see the top of this file).
func NodeBackup(ctx context.Context, o BackupOptions, out io.Writer) error {
	if o.DataDir == "" || o.Out == "" {
		return errors.New("--data-dir and --out are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if _, err := os.Lstat(o.Out); err == nil {
		return fmt.Errorf("%s exists: not overwriting a backup; choose another --out", o.Out)
	}
	idDir := filepath.Join(o.DataDir, nodeIdentityDir)
	if _, err := identity.Load(idDir); err != nil {
		return fmt.Errorf("nothing to back up: %w", err)
	}
	e, err := identity.LoadEnrollment(idDir)
	if err != nil {
		return fmt.Errorf("nothing to back up: %w", err)
	}
	st, source, err := readBackupState(ctx, o.DataDir)
	if err != nil {
		return err
	}
	idFiles, err := identityFiles(idDir)
	if err != nil {
		return err
	}
	rep := progress.New(progress.Config{Label: "backup " + e.NodeID, Total: int64(len(idFiles) + 2), Unit: "files", Out: o.Progress, TTY: o.TTY})
	archive, m, err := buildBackup(idDir, idFiles, st, e, source, o.Now().UTC(), rep)
	if err == nil {
		err = secretfile.WriteAtomic(filepath.Dir(o.Out), filepath.Base(o.Out), archive)
	}
	if err == nil {
		rep.Add(1)
	}
	rep.Finish(err)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(out, "backed up node %s (org %s) to %s: %d files, seq high-water mark %d, %d command keys; state read from %s\n",
		m.NodeID, m.OrgID, o.Out, len(m.Files), m.SeqMark, len(st.CommandKeys), source)
	fmt.Fprintf(out, "the archive holds the node's private keys and api key: keep it as you keep %s\n", idDir)
	return nil
}

// readBackupState reads the store's state from where it can be read consistently (see the top of the file).
func readBackupState(ctx context.Context, dataDir string) (store.BackupState, string, error) {
	storeDir := filepath.Join(dataDir, nodeStoreDir)
	quiet := slog.New(slog.DiscardHandler)
	switch err := inspect.Check(storeDir); {
	case err == nil:
		s, err := store.OpenReadOnly(store.Options{DataDir: storeDir, Logger: quiet})
		if err != nil {
			return store.BackupState{}, "", err
		}
		defer s.Close()
		st, err := s.BackupState()
		return st, "the stopped node's store", err
	case errors.Is(err, inspect.ErrLocked):
		c, _, ok := runningNodeAdmin(dataDir)
		if !ok {
			return store.BackupState{}, "", fmt.Errorf("the node is running (its store is locked) and names no admin endpoint in %s (was it started with --admin-listen off?): stop it, or run it with the endpoint, then back up",
				filepath.Join(dataDir, nodeStatusFile))
		}
		var raw []byte
		if err := c.get(ctx, "/v1/backup-state", nil, &raw); err != nil {
			return store.BackupState{}, "", err
		}
		st, err := decodeBackupState(raw)
		return st, "the running node (one snapshot over its admin endpoint " + c.url + ")", err
	case errors.Is(err, inspect.ErrUnclean):
		tmp, err := inspect.CopyForRecovery(storeDir, "")
		if err != nil {
			return store.BackupState{}, "", fmt.Errorf("copy the store for recovery: %w", err)
		}
		defer os.RemoveAll(tmp)
		s, err := store.Open(store.Options{DataDir: tmp, Logger: quiet})
		if err != nil {
			return store.BackupState{}, "", fmt.Errorf("recovered copy of the store: %w", err)
		}
		defer s.Close()
		st, err := s.BackupState()
		return st, "a recovered copy of the store (the node was not stopped cleanly)", err
	case errors.Is(err, inspect.ErrNotBadger):
		return store.BackupState{BatchSeqs: map[string]uint64{}}, "nowhere: the node never ran (no store)", nil
	default:
		return store.BackupState{}, "", err
	}
}

// identityFiles lists the regular files of the identity directory (not the temp files of an interrupted
// write).
func identityFiles(idDir string) ([]string, error) {
	ents, err := os.ReadDir(idDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func buildBackup(idDir string, idFiles []string, st store.BackupState, e identity.Enrollment, source string, now time.Time,
	rep *progress.Reporter) ([]byte, backupManifest, error) {
	m := backupManifest{Format: backupFormat, Version: backupVersion, CreatedAt: now, NodeID: e.NodeID, OrgID: e.OrgID,
		SeqMark: st.SeqMark, Source: source}
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	for _, n := range idFiles {
		b, err := secretfile.Read(filepath.Join(idDir, n))
		if err != nil {
			return nil, m, err
		}
		entries = append(entries, entry{path.Join(backupIdentityDir, n), b})
		rep.Add(1)
	}
	sb, err := encodeBackupState(st)
	if err != nil {
		return nil, m, err
	}
	entries = append(entries, entry{backupStateName, sb})
	rep.Add(1)
	for _, en := range entries {
		sum := sha256.Sum256(en.data)
		m.Files = append(m.Files, backupFile{Name: en.name, Size: int64(len(en.data)), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, m, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	write := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg,
			Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := write(backupManifestName, append(mb, '\n')); err != nil {
		return nil, m, err
	}
	for _, en := range entries {
		if err := write(en.name, en.data); err != nil {
			return nil, m, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, m, err
	}
	if err := zw.Close(); err != nil {
		return nil, m, err
	}
	return buf.Bytes(), m, nil
}

// RestoreOptions configures `hashfleet node restore`.
type RestoreOptions struct {
	// DataDir is where to restore: missing or empty, unless Force. Required.
	DataDir string
	// In is the archive `hashfleet node backup` wrote. Required.
	In string
	// Force restores into a non-empty data directory of the same node that is not running: the mark and
	// batch seqs become the larger of the directory's and the backup's, keys and enrollment the backup's.
	Force bool
	// Progress receives progress lines (nil: none); TTY redraws one line in place.
	Progress io.Writer
	TTY      bool
	Logger   *slog.Logger
}

// openedBackup is a verified archive.
type openedBackup struct {
	manifest backupManifest
	files    map[string][]byte // by archive name
	state    store.BackupState
	enroll   identity.Enrollment
}

// readBackup reads and verifies an archive: the manifest first, every entry it lists present once with its
// size and SHA-256, nothing else, only the names a backup holds.
func readBackup(file string) (*openedBackup, error) {
	f, err := os.Open(filepath.Clean(file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(io.LimitReader(f, backupMaxEntries*backupMaxEntry))
	if err != nil {
		return nil, fmt.Errorf("%s is not a node backup (gzip): %w", file, err)
	}
	tr := tar.NewReader(zr)
	b := &openedBackup{files: map[string][]byte{}}
	var manifestRead bool
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: damaged archive: %w", file, err)
		}
		if i >= backupMaxEntries {
			return nil, fmt.Errorf("%s: more than %d entries: not a node backup", file, backupMaxEntries)
		}
		if h.Typeflag != tar.TypeReg || h.Size > backupMaxEntry || !validBackupName(h.Name) {
			return nil, fmt.Errorf("%s: unexpected entry %q (type %c, %d bytes): not a node backup", file, h.Name, h.Typeflag, h.Size)
		}
		data, err := io.ReadAll(io.LimitReader(tr, backupMaxEntry+1))
		if err != nil {
			return nil, fmt.Errorf("%s: damaged archive: %w", file, err)
		}
		if i == 0 {
			if h.Name != backupManifestName {
				return nil, fmt.Errorf("%s: the first entry is %q, not %s: not a node backup", file, h.Name, backupManifestName)
			}
			if err := json.Unmarshal(data, &b.manifest); err != nil {
				return nil, fmt.Errorf("%s: manifest: %w", file, err)
			}
			manifestRead = true
			continue
		}
		if _, dup := b.files[h.Name]; dup || h.Name == backupManifestName {
			return nil, fmt.Errorf("%s: entry %q appears twice", file, h.Name)
		}
		b.files[h.Name] = data
	}
	m := b.manifest
	switch {
	case !manifestRead:
		return nil, fmt.Errorf("%s: empty archive", file)
	case m.Format != backupFormat:
		return nil, fmt.Errorf("%s: format %q, want %q", file, m.Format, backupFormat)
	case m.Version != backupVersion:
		return nil, fmt.Errorf("%s: backup version %d; this hashfleet reads version %d", file, m.Version, backupVersion)
	}
	listed := map[string]bool{}
	for _, mf := range m.Files {
		data, ok := b.files[mf.Name]
		if !ok {
			return nil, fmt.Errorf("%s: %s is listed in the manifest but missing: %w", file, mf.Name, errBackupChecksum)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != mf.Size || hex.EncodeToString(sum[:]) != mf.SHA256 {
			return nil, fmt.Errorf("%s: %s does not match its manifest checksum (damaged or altered): %w", file, mf.Name, errBackupChecksum)
		}
		listed[mf.Name] = true
	}
	for name := range b.files {
		if !listed[name] {
			return nil, fmt.Errorf("%s: %s is not in the manifest: %w", file, name, errBackupChecksum)
		}
	}
	sb, ok := b.files[backupStateName]
	if !ok {
		return nil, fmt.Errorf("%s: no %s", file, backupStateName)
	}
	if b.state, err = decodeBackupState(sb); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	eb, ok := b.files[path.Join(backupIdentityDir, identity.EnrollmentFile)]
	if !ok {
		return nil, fmt.Errorf("%s: no enrollment: not a backup of an enrolled node", file)
	}
	if err := json.Unmarshal(eb, &b.enroll); err != nil {
		return nil, fmt.Errorf("%s: enrollment: %w", file, err)
	}
	if err := b.enroll.Validate(); err != nil {
		return nil, fmt.Errorf("%s: enrollment: %w", file, err)
	}
	if b.enroll.NodeID != m.NodeID || b.state.SeqMark != m.SeqMark {
		return nil, fmt.Errorf("%s: the manifest (node %s, mark %d) disagrees with the enrollment and state (node %s, mark %d)",
			file, m.NodeID, m.SeqMark, b.enroll.NodeID, b.state.SeqMark)
	}
	for _, n := range []string{identity.IdentityKeyFile, identity.MinerSigningKeyFile, identity.CredentialKeyFile} {
		if _, ok := b.files[path.Join(backupIdentityDir, n)]; !ok {
			return nil, fmt.Errorf("%s: no %s", file, n)
		}
	}
	return b, nil
}

// errBackupChecksum: an archive whose entries do not match its manifest.
var errBackupChecksum = errors.New("backup checksum mismatch")

// validBackupName accepts MANIFEST.json, state.json and identity/<name> with a plain file name.
func validBackupName(name string) bool {
	if name == backupManifestName || name == backupStateName {
		return true
	}
	dir, base := path.Split(name)
	return dir == backupIdentityDir+"/" && base != "" && base != "." && base != ".." && !strings.HasPrefix(base, ".") &&
		!strings.ContainsAny(base, `/\`)
}

// NodeRestore restores a backup into o.DataDir (see the top of this file).
func NodeRestore(ctx context.Context, o RestoreOptions, out io.Writer) (err error) {
	if o.DataDir == "" || o.In == "" {
		return errors.New("--data-dir and --in are required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := readBackup(o.In)
	if err != nil {
		return err
	}
	idDir := filepath.Join(o.DataDir, nodeIdentityDir)
	storeDir := filepath.Join(o.DataDir, nodeStoreDir)
	empty, err := emptyDir(o.DataDir)
	if err != nil {
		return err
	}
	if !empty {
		if !o.Force {
			return fmt.Errorf("%s is not empty: restore into an empty directory, or pass --force to restore over this node's own directory", o.DataDir)
		}
		if err := inspect.Check(storeDir); errors.Is(err, inspect.ErrLocked) {
			return fmt.Errorf("a node is running from %s: stop it before restoring over it", o.DataDir)
		}
		if cur, err := identity.LoadEnrollment(idDir); err == nil && cur.NodeID != b.enroll.NodeID {
			return fmt.Errorf("%s belongs to node %s; the backup is of node %s: restore into an empty directory", o.DataDir, cur.NodeID, b.enroll.NodeID)
		}
	}
	rep := progress.New(progress.Config{Label: "restore " + b.manifest.NodeID, Total: int64(len(b.manifest.Files)), Unit: "files",
		Out: o.Progress, TTY: o.TTY})
	defer func() { rep.Finish(err) }()
	if empty {
		defer func() {
			if err != nil { // leave the directory as empty as it was
				_ = os.RemoveAll(storeDir)
				_ = os.RemoveAll(idDir)
			}
		}()
	}
	if err := secretfile.EnsureDir(o.DataDir, "node data directory"); err != nil {
		return err
	}
	// The state first: a directory with keys but no mark would run and accept old commands.
	s, err := store.Open(store.Options{DataDir: storeDir, Logger: o.Logger})
	if err != nil {
		return err
	}
	err = s.RestoreState(b.state)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rep.Add(1)
	if err := secretfile.EnsureDir(idDir, "identity directory"); err != nil {
		return err
	}
	enrollName := path.Join(backupIdentityDir, identity.EnrollmentFile)
	names := make([]string, 0, len(b.files))
	for name := range b.files {
		if strings.HasPrefix(name, backupIdentityDir+"/") && name != enrollName {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range append(names, enrollName) { // the enrollment (api key) last, as enrollment writes it
		if err := secretfile.WriteAtomic(idDir, path.Base(name), b.files[name]); err != nil {
			return err
		}
		rep.Add(1)
	}
	id, err := identity.Load(idDir)
	if err != nil {
		return fmt.Errorf("the restored keys do not load: %w", err)
	}
	if _, err := identity.LoadEnrollment(idDir); err != nil {
		return fmt.Errorf("the restored enrollment does not load: %w", err)
	}
	fmt.Fprintf(out, "restored node %s (org %s) into %s from a backup of %s\n", b.enroll.NodeID, b.enroll.OrgID, o.DataDir,
		b.manifest.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(out, "  identity fingerprint %s\n", id.Fingerprint())
	fmt.Fprintf(out, "  seq high-water mark  %d: the node refuses every command at or below it\n", b.state.SeqMark)
	fmt.Fprintf(out, "  command keys         %d (org %s)\n", len(b.state.CommandKeys), b.state.OrgID)
	fmt.Fprintf(out, "  batch seqs           reserved up to the backup's + %d (the cloud drops batches at or below what it applied)\n", uint64(store.RestoreBatchSeqSkip))
	fmt.Fprintf(out, "run it: hashfleet node run --data-dir %s --devices FILE\n", o.DataDir)
	return nil
}

// emptyDir reports whether dir is missing or holds nothing.
func emptyDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(ents) == 0, nil
}
