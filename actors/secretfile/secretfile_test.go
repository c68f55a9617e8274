package secretfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

func newDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := secretfile.EnsureDir(dir, "test directory"); err != nil {
		t.Fatalf("EnsureDir: %v", err)
	}
	return dir
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureDirCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := secretfile.EnsureDir(dir, "test directory"); err != nil {
		t.Fatalf("EnsureDir: %v", err)
	}
	if m := mode(t, dir); m != secretfile.DirMode {
		t.Fatalf("directory mode %04o, want 0700", m)
	}
	// Idempotent on an existing private directory.
	if err := secretfile.EnsureDir(dir, "test directory"); err != nil {
		t.Fatalf("EnsureDir again: %v", err)
	}
	if err := secretfile.CheckDir(filepath.Join(t.TempDir(), "missing"), "test directory"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CheckDir of a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func TestWriteAtomicAndRead(t *testing.T) {
	dir := newDir(t)
	for _, data := range [][]byte{[]byte("first"), []byte("second, longer than the first"), {}} {
		if err := secretfile.WriteAtomic(dir, "key", data); err != nil {
			t.Fatalf("WriteAtomic: %v", err)
		}
		path := filepath.Join(dir, "key")
		if m := mode(t, path); m != secretfile.FileMode {
			t.Fatalf("file mode %04o, want 0600", m)
		}
		got, err := secretfile.Read(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Read = %q, %v; want %q", got, err, data)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %v, want only the file", entries)
	}
	if _, err := secretfile.Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// A write that fails between fsync and rename (a crash there) leaves the old file intact and no temp file.
func TestWriteAtomicFailedRenameLeavesNoTemp(t *testing.T) {
	dir := newDir(t)
	if err := secretfile.WriteAtomic(dir, "key", []byte("old")); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("simulated crash before rename")
	var sawTemp, want string
	secretfile.TestHookBeforeRename = func(tmp string) error {
		sawTemp = tmp
		fi, err := os.Stat(tmp)
		if err != nil || fi.Mode().Perm() != secretfile.FileMode {
			t.Errorf("temp file %s: %v, %v; want mode 0600", tmp, fi, err)
		}
		if b, _ := os.ReadFile(tmp); string(b) != want {
			t.Errorf("temp file holds %q before rename, want the full new content", b)
		}
		return crash
	}
	t.Cleanup(func() { secretfile.TestHookBeforeRename = nil })

	want = "new"
	if err := secretfile.WriteAtomic(dir, "key", []byte(want)); !errors.Is(err, crash) {
		t.Fatalf("WriteAtomic with a crash: %v", err)
	}
	if sawTemp == "" || filepath.Dir(sawTemp) != dir {
		t.Fatalf("temp file %q not in the target directory", sawTemp)
	}
	if _, err := os.Stat(sawTemp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp file left behind: %v", err)
	}
	if got, err := secretfile.Read(filepath.Join(dir, "key")); err != nil || string(got) != "old" {
		t.Fatalf("after a failed write: %q, %v; want the old content", got, err)
	}
	// A first write that fails leaves nothing at all.
	want = "x"
	if err := secretfile.WriteAtomic(dir, "other", []byte(want)); !errors.Is(err, crash) {
		t.Fatalf("WriteAtomic with a crash: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "key" {
		t.Fatalf("failed writes left %v", entries)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := newDir(t)
	for _, name := range []string{".key.tmp-123", ".key.tmp-456", ".cert.tmp-1", ".other.tmp-9", "key"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("-----BEGIN PRIV"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secretfile.RemoveStaleTemps(dir, "key", "cert")
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, ",") != ".other.tmp-9,key" {
		t.Fatalf("after RemoveStaleTemps: %v, want [.other.tmp-9 key]", left)
	}
}

func TestOpenFileRefusedWithChmodFix(t *testing.T) {
	dir := newDir(t)
	path := filepath.Join(dir, "key")
	if err := secretfile.WriteAtomic(dir, "key", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o601} {
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
		errCheck := secretfile.CheckFile(path)
		_, errRead := secretfile.Read(path)
		for _, err := range []error{errCheck, errRead} {
			if !errors.Is(err, secretfile.ErrInsecurePermissions) {
				t.Fatalf("file at %04o: %v, want ErrInsecurePermissions", m, err)
			}
			for _, want := range []string{path, "has mode " + octal(m), `"chmod 600 ` + path + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := secretfile.CheckFile(path); err != nil {
		t.Fatalf("owner-only 0400 file refused: %v", err)
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestSymlinkRefused(t *testing.T) {
	dir := newDir(t)
	elsewhere := filepath.Join(t.TempDir(), "stolen.key")
	if err := os.WriteFile(elsewhere, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "key")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	errCheck := secretfile.CheckFile(link)
	_, errRead := secretfile.Read(link)
	for _, err := range []error{errCheck, errRead} {
		if !errors.Is(err, secretfile.ErrInsecurePermissions) || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("symlinked secret: %v, want ErrInsecurePermissions naming the symbolic link", err)
		}
	}
	// Not a regular file at all.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := secretfile.CheckFile(sub); !errors.Is(err, secretfile.ErrInsecurePermissions) {
		t.Fatalf("directory as secret file: %v, want ErrInsecurePermissions", err)
	}
}

func TestOpenDirectoryRefused(t *testing.T) {
	dir := newDir(t)
	for _, m := range []os.FileMode{0o740, 0o750, 0o755, 0o701, 0o707} {
		if err := os.Chmod(dir, m); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"CheckDir":  secretfile.CheckDir(dir, "test directory"),
			"EnsureDir": secretfile.EnsureDir(dir, "test directory"),
		} {
			if !errors.Is(err, secretfile.ErrInsecurePermissions) {
				t.Fatalf("%s with dir %04o: %v, want ErrInsecurePermissions", name, m, err)
			}
			for _, want := range []string{"test directory " + dir, "has mode " + octal(m), `"chmod 700 ` + dir + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q does not mention %q", name, err, want)
				}
			}
		}
		// Refused, not silently fixed.
		if got := mode(t, dir); got != m {
			t.Fatalf("EnsureDir changed the mode to %04o", got)
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := secretfile.CheckDir(file, "test directory"); !errors.Is(err, secretfile.ErrInsecurePermissions) {
		t.Fatalf("CheckDir of a file: %v, want ErrInsecurePermissions", err)
	}
}

func TestTooLargeRefused(t *testing.T) {
	dir := newDir(t)
	path := filepath.Join(dir, "key")
	if err := secretfile.WriteAtomic(dir, "key", make([]byte, secretfile.MaxSize)); err != nil {
		t.Fatal(err)
	}
	if b, err := secretfile.Read(path); err != nil || len(b) != secretfile.MaxSize {
		t.Fatalf("Read of exactly MaxSize: %d bytes, %v", len(b), err)
	}
	if err := secretfile.WriteAtomic(dir, "key", make([]byte, secretfile.MaxSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := secretfile.Read(path); !errors.Is(err, secretfile.ErrTooLarge) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of MaxSize+1 bytes: %v, want ErrTooLarge naming the file", err)
	}
}
