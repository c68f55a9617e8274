package testsvc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// EnvCI, when "1", turns a missing service binary into a test failure instead of a skip.
const EnvCI = "HASHFLEET_CI"

// missing skips tb, or fails it under HASHFLEET_CI=1.
func missing(tb testing.TB, what, pkg string) {
	tb.Helper()
	msg := fmt.Sprintf("%s not found: install Debian's %s (apt-get install -y %s, or .ci/services)", what, pkg, pkg)
	if os.Getenv(EnvCI) == "1" {
		tb.Fatal(msg + "; " + EnvCI + "=1 requires it")
	}
	tb.Skip(msg)
}

// lookBin finds name in PATH or in the given glob directories (newest match last wins after sorting).
func lookBin(name string, globs ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, g := range globs {
		m, _ := filepath.Glob(filepath.Join(g, name))
		sort.Strings(m)
		for i := len(m) - 1; i >= 0; i-- {
			if st, err := os.Stat(m[i]); err == nil && st.Mode().IsRegular() {
				return m[i], true
			}
		}
	}
	return "", false
}

// portMu keeps two helpers of one process from picking the same free port.
var (
	portMu sync.Mutex
	given  = map[int]bool{}
)

// FreePort returns a loopback TCP port nobody listened on a moment ago (and that this process did not hand
// out before).
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !given[p] {
			given[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("free port: no unused port after 50 tries")
}

// waitTCP waits until addr accepts a TCP connection, the process exits, or d passes.
func waitTCP(addr string, d time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("process exited before %s accepted connections", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not accept connections within %s", addr, d)
}

// proc is a started service process with its captured output.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuf
	exited chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the head; a test only needs the start-up lines
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	p := &proc{cmd: cmd, out: &syncBuf{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to d, then kills.
func (p *proc) stop(d time.Duration) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
