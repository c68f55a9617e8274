package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The metrics flags through the built binary: every mode that runs refuses a non-loopback --metrics-listen
// without auth before it starts anything, with the operator's message; every long-running subcommand has
// --log-level; the demo prints where /metrics is served and serves it.

func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := filepath.Join(t.TempDir(), "hashfleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestMetricsListenRefusedWithoutAuth(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	modes := map[string][]string{
		"server":   {"server", "--data-dir", filepath.Join(dir, "server"), "--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"},
		"node run": {"node", "run", "--data-dir", filepath.Join(dir, "node")},
		"combined": {"combined", "--data-dir", filepath.Join(dir, "combined"), "--listen", "127.0.0.1:0"},
		"demo":     {"demo", "--miners", "1", "--data-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0"},
	}
	for name, args := range modes {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			cmd := exec.Command(bin, append(args, "--metrics-listen", "0.0.0.0:0", "--admin-token", token)...)
			if name == "node run" {
				cmd = exec.Command(bin, append(args, "--metrics-listen", "0.0.0.0:0")...)
			}
			done := make(chan struct{})
			var out []byte
			var err error
			go func() {
				out, err = cmd.CombinedOutput()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running after 30s:\n%s", out)
			}
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			msg := string(out)
			if code != 1 || !strings.Contains(msg, "metrics endpoint would be open to the network without authentication") ||
				!strings.Contains(msg, "--metrics-listen 0.0.0.0:0 is not a loopback address") ||
				!strings.Contains(msg, "--metrics-basic-auth-user") || !strings.Contains(msg, "--metrics-client-ca") {
				t.Fatalf("exit %d (%v), want 1 with the refusal:\n%s", code, err, msg)
			}
			// Refused before anything started: no data directory made, no URL printed.
			if strings.Contains(msg, "http://") {
				t.Errorf("printed an address before refusing:\n%s", msg)
			}
			for _, sub := range []string{"server", "combined", "demo"} {
				if _, err := os.Stat(filepath.Join(dir, sub)); err == nil {
					t.Errorf("%s data directory made before the refusal", sub)
				}
			}
		})
	}
}

func TestLogLevelAndMetricsFlagsOnEverySubcommand(t *testing.T) {
	bin := buildBinary(t)
	for _, c := range []struct {
		args    []string
		metrics bool
	}{
		{[]string{"demo"}, true}, {[]string{"combined"}, true}, {[]string{"server"}, true}, {[]string{"node", "run"}, true},
		{[]string{"node", "enroll"}, false}, {[]string{"minersim"}, false}, {[]string{"bench"}, false},
	} {
		out, _ := exec.Command(bin, append(c.args, "-h")...).CombinedOutput()
		help := string(out)
		if !strings.Contains(help, "-log-level") {
			t.Errorf("hashfleet %s has no --log-level:\n%s", strings.Join(c.args, " "), help)
		}
		for _, f := range []string{"-metrics-listen", "-metrics-basic-auth-user", "-metrics-basic-auth-password-file",
			"-metrics-tls-cert", "-metrics-tls-key", "-metrics-client-ca"} {
			if strings.Contains(help, f) != c.metrics {
				t.Errorf("hashfleet %s: flag %s present %v, want %v", strings.Join(c.args, " "), f, !c.metrics, c.metrics)
			}
		}
		if c.metrics && c.args[0] != "server" && !strings.Contains(help, "-forward-metrics") {
			t.Errorf("hashfleet %s has no --forward-metrics", strings.Join(c.args, " "))
		}
	}
}

func TestDemoServesMetrics(t *testing.T) {
	bin := buildBinary(t)
	p := start(t, bin, "demo", "demo", "--miners", "3", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--admin-token", token, "--poll-interval", "200ms", "--metrics-listen", "127.0.0.1:0", "--forward-metrics")
	base := p.await(`metrics\s+(http://127\.0\.0\.1:[0-9]+)/metrics\s+\(loopback, no auth`, 20*time.Second)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: HTTP %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		_, body := get("/metrics")
		if strings.Contains(body, `hashfleet_node_miners{state="mining"} 3`) &&
			strings.Contains(body, `hashfleet_server_nodes_connected 1`) { // the union of both halves
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics after 15s:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: HTTP %d", code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(20 * time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("demo exited %d after SIGTERM:\n%s", code, p.output())
	}
}
