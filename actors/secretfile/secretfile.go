package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// DirMode is the mode EnsureDir creates a directory with; CheckDir refuses any group or other bit.
	DirMode os.FileMode = 0o700
	// FileMode is the mode WriteAtomic writes a file with; CheckFile refuses any group or other bit.
	FileMode os.FileMode = 0o600
	// MaxSize bounds what Read reads: every secret file is a few kilobytes at most.
	MaxSize = 1 << 20
)

// TestHookBeforeRename is for tests only. When set, WriteAtomic calls it after the temp file is written,
// synced and closed, and before it is renamed over the target; an error aborts the write as a crash there
// would (the temp file is removed, the target is untouched). Set it only while no write is running, and reset
// it to nil when done.
var TestHookBeforeRename func(tmpPath string) error

func tempPattern(name string) string { return "." + name + ".tmp-*" }

// WriteAtomic writes data to dir/name with mode 0600: temp file in dir, write, fsync, close, rename, fsync
// dir. On error the temp file is removed and dir/name is untouched.
func WriteAtomic(dir, name string, data []byte) (err error) {
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(FileMode); err != nil {
		return fmt.Errorf("write %s: chmod temp: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if hook := TestHookBeforeRename; hook != nil {
		if err = hook(tmp); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// RemoveStaleTemps deletes the temp files a crash during WriteAtomic left behind in dir for the given names.
func RemoveStaleTemps(dir string, names ...string) {
	for _, n := range names {
		matches, _ := filepath.Glob(filepath.Join(dir, tempPattern(n)))
		for _, m := range matches {
			_ = os.Remove(m)
		}
	}
}

// EnsureDir creates dir with mode 0700 if missing (and fsyncs its parent), then checks it with CheckDir
// either way: an existing directory that is too open is refused, not silently fixed. what names the
// directory in messages ("identity directory", "CA directory").
func EnsureDir(dir, what string) error {
	what = orDirectory(what)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, DirMode); err != nil {
			return fmt.Errorf("create %s %s: %w", what, dir, err)
		}
		if err := os.Chmod(dir, DirMode); err != nil {
			return fmt.Errorf("create %s %s: %w", what, dir, err)
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("create %s %s: %w", what, dir, err)
		}
	} else if err != nil {
		return fmt.Errorf("%s %s: %w", what, dir, err)
	}
	return CheckDir(dir, what)
}

// CheckDir refuses (ErrInsecurePermissions) a dir that is not a directory or that group or others can
// access, naming its mode and the chmod that fixes it. It returns fs.ErrNotExist (wrapped) if dir is missing.
// what names the directory in messages.
func CheckDir(dir, what string) error {
	what = orDirectory(what)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s is not a directory: %w", what, dir, ErrInsecurePermissions)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o, accessible by group or others; fix with \"chmod 700 %s\": %w",
			what, dir, perm, dir, ErrInsecurePermissions)
	}
	return nil
}

func orDirectory(what string) string {
	if what == "" {
		return "directory"
	}
	return what
}

// CheckFile refuses (ErrInsecurePermissions) a secret file that is a symbolic link, not a regular file, or
// accessible by group or others, naming its mode and the chmod that fixes it. It returns fs.ErrNotExist
// (wrapped) if the file is missing.
func CheckFile(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; secret files must be regular files, not links: %w", path, ErrInsecurePermissions)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: %w", path, ErrInsecurePermissions)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o, accessible by group or others; fix with \"chmod 600 %s\": %w",
			path, perm, path, ErrInsecurePermissions)
	}
	return nil
}

// Read checks path with CheckFile and reads it. The file opened is checked to be the one whose permissions
// were checked, so a swap between the check and the read is refused (ErrInsecurePermissions). A file larger
// than MaxSize is refused with ErrTooLarge. A missing file returns fs.ErrNotExist (wrapped).
func Read(path string) ([]byte, error) {
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	before, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	after, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !os.SameFile(before, after) || after.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s changed while being read: %w", path, ErrInsecurePermissions)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes: %w", path, MaxSize, ErrTooLarge)
	}
	return b, nil
}
