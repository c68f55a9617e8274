//go:build !unix

package bootstrap

// processAlive cannot check without signals here; the admin endpoint's answer (or its absence) decides.
func processAlive(pid int) bool { return pid > 0 }
