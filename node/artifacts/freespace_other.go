//go:build !unix

package artifacts

// freeSpace is not known on this platform: the check passes and a full disk fails the write instead.
func freeSpace(string) (uint64, error) { return 1 << 62, nil }
