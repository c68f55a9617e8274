//go:build !unix

package inspect

// probeLock is a no-op where flock is not available; Badger's own lock error is recognised instead.
func probeLock(string) error { return nil }
