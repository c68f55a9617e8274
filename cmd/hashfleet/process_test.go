package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Split mode as real processes of the built binary: minersim, server and node on loopback, enrollment with
// the fingerprint confirmed through the API, a command executed on a simulated miner, then the server killed
// with SIGKILL and restarted (the node reconnects with backoff), then stopped with SIGTERM (goaway), and the
// node's read-only status while it runs and after it stopped.

const token = "process-test-admin-token-0123"

type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.output())
		}
	})
	return p
}

// await returns the first submatch of re in the process's output, waiting up to timeout.
func (p *proc) await(re string, timeout time.Duration) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.output()); m != nil {
				return m[len(m)-1]
			}
			p.t.Fatalf("%s exited before printing %q:\n%s", p.name, re, p.output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s:\n%s", p.name, re, timeout, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) wait(timeout time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s:\n%s", p.name, timeout, p.output())
	}
}

type api struct {
	t    *testing.T
	base string
}

func (a api) do(method, path string, body any, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (a api) nodeConnected(id string) bool {
	var l struct {
		Nodes []struct {
			Node      string `json:"node"`
			Connected bool   `json:"connected"`
		} `json:"nodes"`
	}
	if a.do("GET", "/api/v1/nodes", nil, &l) != 200 {
		return false
	}
	for _, n := range l.Nodes {
		if n.Node == id && n.Connected {
			return true
		}
	}
	return false
}

func TestSplitModeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hashfleet")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	devices := filepath.Join(dir, "devices.json")
	sim := start(t, bin, "minersim", "minersim", "--miners", "3", "--devices-out", devices, "--admin-listen", "127.0.0.1:0")
	simAdmin := sim.await(`admin view (http://[0-9.:]+)/writes`, 10*time.Second)

	srvDir := filepath.Join(dir, "server")
	srvArgs := []string{"server", "--data-dir", srvDir, "--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0",
		"--admin-token", token, "--log-level", "warn", "--metrics-listen", "127.0.0.1:0"}
	srv := start(t, bin, "server", srvArgs...)
	httpURL := srv.await(`API and UI (http://[0-9.:]+)/`, 15*time.Second)
	gw := srv.await(`gateway\s+([0-9.:]+) \(TLS\)`, 5*time.Second)
	caFP := srv.await(`CA fingerprint (SHA256:[0-9a-f]+)`, 5*time.Second)
	a := api{t: t, base: httpURL}

	var code struct {
		Code string `json:"code"`
	}
	if st := a.do("POST", "/api/v1/enrollment-codes", map[string]any{"site": "proc"}, &code); st != 201 {
		t.Fatalf("mint code: %d", st)
	}
	nodeDir := filepath.Join(dir, "node")
	enroll := start(t, bin, "node enroll", "node", "enroll", "--server", gw, "--code", code.Code, "--data-dir", nodeDir,
		"--ca-fingerprint", caFP, "--poll", "100ms")
	fp := enroll.await(`node identity fingerprint: (SHA256:[0-9a-f-]+)`, 10*time.Second)
	nodeID := enroll.await(`enrolled as node (n[0-9a-f]+)`, 10*time.Second)
	if st := a.do("POST", "/api/v1/nodes/"+nodeID+"/confirm", map[string]string{"fingerprint": fp}, nil); st != 200 {
		t.Fatalf("confirm: %d", st)
	}
	enroll.wait(10 * time.Second)
	if !strings.Contains(enroll.output(), "confirmed: node "+nodeID) {
		t.Fatalf("enroll output:\n%s", enroll.output())
	}

	node := start(t, bin, "node run", "node", "run", "--data-dir", nodeDir, "--devices", devices, "--poll-interval", "500ms", "--log-level", "warn",
		"--metrics-listen", "127.0.0.1:0")
	waitFor(t, 15*time.Second, "node connected", func() bool { return a.nodeConnected(nodeID) })
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	waitFor(t, 10*time.Second, "devices pending", func() bool {
		return a.do("GET", "/api/v1/devices/pending", nil, &pend) == 200 && len(pend.Devices) == 3
	})
	ids := []string{}
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	if st := a.do("POST", "/api/v1/nodes/"+nodeID+"/devices", map[string]any{"miner_ids": ids}, nil); st != 200 {
		t.Fatalf("pair: %d", st)
	}
	waitFor(t, 15*time.Second, "3 miners mining", func() bool {
		var page struct {
			Items []struct{ State string } `json:"items"`
		}
		if a.do("GET", "/api/v1/miners", nil, &page) != 200 || len(page.Items) != 3 {
			return false
		}
		for _, m := range page.Items {
			if m.State != "mining" {
				return false
			}
		}
		return true
	})
	var cmd struct {
		CommandID string `json:"command_id"`
	}
	if st := a.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{"sim-1"}, "action": "stop"}, &cmd); st != 202 {
		t.Fatalf("command: %d", st)
	}
	waitFor(t, 15*time.Second, "command succeeded", func() bool {
		var v struct{ Status string }
		return a.do("GET", "/api/v1/commands/"+cmd.CommandID, nil, &v) == 200 && v.Status == "succeeded"
	})
	var writes struct {
		Writes []struct{ Miner, Command string } `json:"writes"`
	}
	resp, err := http.Get(simAdmin + "/writes")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&writes)
	resp.Body.Close()
	if len(writes.Writes) != 1 || writes.Writes[0].Miner != "sim-1" || writes.Writes[0].Command != "pause" {
		t.Fatalf("simulated miners' writes: %+v", writes.Writes)
	}

	// node status while the node runs: the status file.
	status := func() string {
		out, err := exec.Command(bin, "node", "status", "--data-dir", nodeDir).CombinedOutput()
		if err != nil {
			t.Fatalf("node status: %v\n%s", err, out)
		}
		return string(out)
	}
	waitFor(t, 5*time.Second, "status file with the mark", func() bool {
		st := status()
		return strings.Contains(st, "running (pid") && strings.Contains(st, "seq high-water mark        1")
	})

	// kill -9 the server, restart it on the same addresses: the node reconnects by itself.
	killedAt := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.wait(5 * time.Second)
	waitFor(t, 5*time.Second, "the node to notice", func() bool { return !strings.Contains(status(), "cloud link                 up") })
	apiAddr := strings.TrimPrefix(httpURL, "http://")
	// It comes back requiring mTLS: the node got its client certificate at enrollment and presents it.
	srvArgs2 := []string{"server", "--data-dir", srvDir, "--listen", apiAddr, "--gateway-listen", gw, "--admin-token", token, "--log-level", "warn",
		"--metrics-listen", "127.0.0.1:0",
		"--gateway-mtls"}
	restartedAt := time.Now()
	srv2 := start(t, bin, "server (restarted)", srvArgs2...)
	srv2.await(`gateway\s+[0-9.:]+ \((TLS, mTLS): client certificate required\)`, 15*time.Second)
	if fp2 := srv2.await(`CA fingerprint (SHA256:[0-9a-f]+)`, 15*time.Second); fp2 != caFP {
		t.Fatalf("the CA changed across a restart: %s, was %s", fp2, caFP)
	}
	servingAt := time.Now()
	waitFor(t, 60*time.Second, "node reconnected after kill -9", func() bool { return a.nodeConnected(nodeID) })
	reconnected := time.Now()
	t.Logf("kill -9: server down→restarted %s, restarted→serving %s, serving→node reconnected %s (total from kill %s)",
		restartedAt.Sub(killedAt).Round(time.Millisecond), servingAt.Sub(restartedAt).Round(time.Millisecond),
		reconnected.Sub(servingAt).Round(time.Millisecond), reconnected.Sub(killedAt).Round(time.Millisecond))
	if st := a.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{"sim-1"}, "action": "start"}, &cmd); st != 202 {
		t.Fatalf("command after restart: %d", st)
	}
	waitFor(t, 15*time.Second, "command after restart succeeded", func() bool {
		var v struct{ Status string }
		return a.do("GET", "/api/v1/commands/"+cmd.CommandID, nil, &v) == 200 && v.Status == "succeeded"
	})

	// Graceful stop: goaway, then the node keeps retrying; stop the node; status from the store.
	if err := srv2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv2.wait(20 * time.Second)
	if !strings.Contains(srv2.output(), "goaway to every node") {
		t.Fatalf("server output:\n%s", srv2.output())
	}
	if err := node.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	node.wait(20 * time.Second)
	st := status()
	if !strings.Contains(st, "stopped (read from the store)") || !strings.Contains(st, "seq high-water mark        2") ||
		!strings.Contains(st, "enrollment                 node "+nodeID) {
		t.Fatalf("node status after stop:\n%s", st)
	}
	fmt.Fprintln(os.Stderr, strings.TrimSpace(st))
}
