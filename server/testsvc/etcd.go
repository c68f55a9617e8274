package testsvc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Etcd is a throwaway single-member etcd.
type Etcd struct {
	// Endpoint is the client URL host:port on 127.0.0.1.
	Endpoint string
	p        *proc
}

// Log returns what etcd printed so far.
func (e *Etcd) Log() string { return e.p.out.String() }

// StartEtcd starts one etcd member for tb and stops it when tb ends. It skips tb when etcd is missing
// (fails under HASHFLEET_CI=1).
func StartEtcd(tb testing.TB) *Etcd {
	tb.Helper()
	bin, ok := lookBin("etcd")
	if !ok {
		missing(tb, "etcd", "etcd-server")
	}
	dir := tb.TempDir()
	client, peer := FreePort(tb), FreePort(tb)
	cu := fmt.Sprintf("http://127.0.0.1:%d", client)
	pu := fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(bin, "--name", "t", "--data-dir", dir,
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "t="+pu, "--initial-cluster-state", "new",
		"--log-level", "warn", "--logger", "zap")
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+os.Getenv("ETCD_UNSUPPORTED_ARCH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := startProc(cmd)
	if err != nil {
		tb.Fatalf("etcd: %v", err)
	}
	e := &Etcd{Endpoint: fmt.Sprintf("127.0.0.1:%d", client), p: p}
	tb.Cleanup(func() { p.stop(10 * time.Second) })
	if err := waitTCP(e.Endpoint, 15*time.Second, p.exited); err != nil {
		tb.Fatalf("etcd: %v\n%s", err, e.Log())
	}
	return e
}
