package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
)

// badgerMagic starts every Badger MANIFEST.
var badgerMagic = []byte("Bdgr")

// openStore checks that dir holds a Badger store that can be read without writing to it, then opens it
// read-only. Every check that can be made without Badger is made first: Badger leaves goroutines behind when
// its own open fails, and its errors do not say what an operator should do. With cfg.RecoverCopy an
// uncleanly closed store is copied and opened (read-write) in the copy; tmp is that copy's directory.
func openStore(cfg Config) (db *badger.DB, tmp string, err error) {
	dir := cfg.Dir
	logs, biggest, err := check(dir)
	if err != nil && !errors.Is(err, ErrUnclean) {
		return nil, "", err
	}
	mt := cfg.MemTableSize
	if mt == 0 {
		mt = max(64<<20, biggest)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := badgerkv.Options{Dir: dir, ReadOnly: true, MemTableSize: mt, Logger: log}
	if len(logs) > 0 {
		if !cfg.RecoverCopy {
			return nil, "", err
		}
		if tmp, err = copyStore(dir, cfg.TempDir); err != nil {
			return nil, "", fmt.Errorf("%s: copy for recovery: %w", dir, err)
		}
		opts.Dir, opts.ReadOnly = tmp, false
	}
	db, err = openBadger(opts)
	if err != nil {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, "", lockedError(dir)
		}
		return nil, "", fmt.Errorf("%s: %v: %w", dir, err, ErrCorrupt)
	}
	return db, tmp, nil
}

// Check makes the checks Open makes before Badger is involved, without opening anything: ErrNotBadger (no
// such directory, empty, no MANIFEST), ErrCorrupt (no Badger magic), ErrLocked (a running process holds the
// store), ErrUnclean (its last process did not close it: a write-ahead log is left to replay). nil means a
// read-only open can read it. `hashfleet node backup` uses it to choose where to read a node's state from.
func Check(dir string) error {
	_, _, err := check(dir)
	return err
}

// check is Check, also returning the write-ahead log files left behind and the largest one's size.
func check(dir string) (logs []string, biggest int64, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, 0, fmt.Errorf("%s: no such directory: %w", dir, ErrNotBadger)
	case err != nil:
		return nil, 0, fmt.Errorf("%s: %w", dir, err)
	case !fi.IsDir():
		return nil, 0, fmt.Errorf("%s is a file, not a store directory: %w", dir, ErrNotBadger)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", dir, err)
	}
	if len(ents) == 0 {
		return nil, 0, fmt.Errorf("%s is an empty directory: %w", dir, ErrNotBadger)
	}
	head := make([]byte, len(badgerMagic))
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s has no %s (it holds %s): %w", dir, badger.ManifestFilename, listNames(ents), ErrNotBadger)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", dir, err)
	}
	_, rerr := io.ReadFull(f, head)
	_ = f.Close()
	if rerr != nil || !bytes.Equal(head, badgerMagic) {
		return nil, 0, fmt.Errorf("%s: %s does not start with Badger's magic bytes (damaged, or not Badger's): %w", dir, badger.ManifestFilename, ErrCorrupt)
	}
	if err := probeLock(dir); err != nil {
		return nil, 0, lockedError(dir)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".mem") {
			logs = append(logs, e.Name())
			if i, err := e.Info(); err == nil {
				biggest = max(biggest, i.Size())
			}
		}
	}
	if len(logs) > 0 {
		return logs, biggest, uncleanError(dir, logs)
	}
	return nil, 0, nil
}

func uncleanError(dir string, logs []string) error {
	return fmt.Errorf("%s: its last process did not close it (killed or crashed: %s left behind), and Badger must replay "+
		"that log before anything can be read, which needs a write; start the node or server once to recover it, or run the "+
		"inspector with --recover-copy to inspect a recovered private copy (the directory itself is not touched): %w",
		dir, strings.Join(logs, ", "), ErrUnclean)
}

// CopyForRecovery copies the store in dir to a new private directory under tempDir ("" is os.TempDir()),
// keeping Badger's preallocated files sparse, and returns it: the caller opens the copy read-write (Badger
// replays its log there), reads, and removes it. dir itself is never written.
func CopyForRecovery(dir, tempDir string) (string, error) { return copyStore(dir, tempDir) }

func lockedError(dir string) error {
	return fmt.Errorf("%s is held by a running process (Badger lets one process open a store): ask the running node for "+
		"the same views on its loopback admin endpoint instead, or stop it first: %w", dir, ErrLocked)
}

// openBadger opens the store, turning a panic inside Badger (it asserts on some damage) into an error.
func openBadger(o badgerkv.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger panicked opening the store: %v", r)
		}
	}()
	return badgerkv.Open(o)
}

func listNames(ents []fs.DirEntry) string {
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) > 6 {
		names = append(names[:6], fmt.Sprintf("… %d more", len(names)-6))
	}
	return strings.Join(names, ", ")
}

// copyStore copies the regular files of dir into a new temporary directory, keeping Badger's preallocated
// files sparse (runs of zeros become holes), and returns it.
func copyStore(dir, tempDir string) (string, error) {
	tmp, err := os.MkdirTemp(tempDir, "hashfleet-inspect-*")
	if err != nil {
		return "", err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copySparse(filepath.Join(dir, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			_ = os.RemoveAll(tmp)
			return "", err
		}
	}
	return tmp, nil
}

func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	buf, zero := make([]byte, 64<<10), make([]byte, 64<<10)
	var size int64
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					_ = out.Close()
					return err
				}
			} else if _, err := out.Write(buf[:n]); err != nil {
				_ = out.Close()
				return err
			}
			size += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			_ = out.Close()
			return rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
