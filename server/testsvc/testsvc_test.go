package testsvc

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// fakeTB records how a helper ended: Skip and Fatal stop the helper as the real ones do (by unwinding).
type fakeTB struct {
	testing.TB
	skipped, failed string
}

type stop struct{}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skip(args ...any)               { f.skipped = strings.TrimSpace(sprint(args)); panic(stop{}) }
func (f *fakeTB) Fatal(args ...any)              { f.failed = strings.TrimSpace(sprint(args)); panic(stop{}) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = format; panic(stop{}) }

func sprint(args []any) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(a.(string))
	}
	return b.String()
}

func run(f *fakeTB, fn func(testing.TB)) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	fn(f)
}

// TestMissingBinariesSkipOrFail: without etcd or PostgreSQL on PATH (and none under the Debian paths the
// helper searches), a test skips and says which package to install, or fails under HASHFLEET_CI=1.
func TestMissingBinariesSkipOrFail(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	saved := pgGlobs
	pgGlobs = []string{t.TempDir()}
	t.Cleanup(func() { pgGlobs = saved })

	t.Setenv(EnvCI, "")
	f := &fakeTB{TB: t}
	run(f, func(tb testing.TB) { StartEtcd(tb) })
	if !strings.Contains(f.skipped, "etcd-server") || f.failed != "" {
		t.Fatalf("etcd missing: skipped %q failed %q", f.skipped, f.failed)
	}
	f = &fakeTB{TB: t}
	run(f, func(tb testing.TB) { StartPostgres(tb) })
	if !strings.Contains(f.skipped, "postgresql") || f.failed != "" {
		t.Fatalf("postgres missing: skipped %q failed %q", f.skipped, f.failed)
	}

	t.Setenv(EnvCI, "1")
	f = &fakeTB{TB: t}
	run(f, func(tb testing.TB) { StartEtcd(tb) })
	if !strings.Contains(f.failed, "HASHFLEET_CI=1 requires it") || f.skipped != "" {
		t.Fatalf("etcd missing under CI: skipped %q failed %q", f.skipped, f.failed)
	}
}

// TestFreePortNeverRepeats: ports handed out in one process are distinct and were free.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		_ = l.Close()
	}
}
