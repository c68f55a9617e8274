//go:build unix

package inspect

import (
	"errors"
	"os"
	"syscall"
)

// errLockHeld: another process holds the store's directory lock.
var errLockHeld = errors.New("directory lock held")

// probeLock takes and releases the shared lock a read-only Badger open takes, so a store held by a running
// process is reported before Badger is involved.
func probeLock(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return nil // Badger reports it
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return errLockHeld
		}
		return nil
	}
	_ = syscall.Flock(fd, syscall.LOCK_UN)
	return nil
}
