package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/node/spool"
)

// readNodeStatus waits for the running node's status file to name its admin endpoint and spool.
func (s *splitSite) readNodeStatus() NodeStatusReport {
	s.t.Helper()
	var r NodeStatusReport
	waitFor(s.t, 10*time.Second, "status.json with the admin endpoint and the spool", func() bool {
		b, err := os.ReadFile(filepath.Join(s.nodeDir, nodeStatusFile))
		return err == nil && json.Unmarshal(b, &r) == nil && r.Admin != nil && r.Spool != nil && r.PID == os.Getpid()
	})
	return r
}

// The running node serves the inspector's views on its loopback admin endpoint, and `store inspect` of a
// directory the node holds falls back to it by itself.
func TestNodeAdminEndpointServesTheLockedStores(t *testing.T) {
	s := startSplit(t, splitOpts{})
	s.waitCommand(s.command("stop", "sim-0"), "succeeded")
	r := s.readNodeStatus()
	if !strings.HasPrefix(r.Admin.URL, "http://127.0.0.1:") || len(r.Admin.Token) < 32 {
		t.Fatalf("admin endpoint in status.json: %+v", r.Admin)
	}
	if fi, err := os.Stat(filepath.Join(s.nodeDir, nodeStatusFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("status.json holds the admin token: mode %v %v, want 0600", fi.Mode(), err)
	}

	// Without the token: refused.
	resp, err := http.Get(r.Admin.URL + "/v1/stores/node/summary")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d", resp.StatusCode)
	}

	storeDir := filepath.Join(s.nodeDir, nodeStoreDir)
	spoolDir := filepath.Join(storeDir, spool.DirName)
	if err := inspect.Check(storeDir); !errors.Is(err, inspect.ErrLocked) {
		t.Fatalf("the running node's store: %v, want locked", err)
	}
	c := newAdminClient(r.Admin)
	ctx := context.Background()
	for dir, want := range map[string]string{storeDir: "node", spoolDir: "spool", s.nodeDir: ""} {
		kind, err := c.storeKindAt(ctx, dir)
		if kind != want || (want == "" && err == nil) {
			t.Errorf("store at %s: %q %v, want %q", dir, kind, err, want)
		}
	}

	view := func(o StoreInspectOptions) (string, error) {
		if o.Limit == 0 {
			o.Limit, o.Tail = 20, 20
		}
		var out bytes.Buffer
		err := RunStoreInspect(ctx, o, &out)
		return out.String(), err
	}
	out, err := view(StoreInspectOptions{Dir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`store\s+node:`, `seq high-water mark\s+1\n`, `read from\s+the running node's admin endpoint ` + regexp.QuoteMeta(r.Admin.URL)} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("summary of the locked node store lacks %q:\n%s", w, out)
		}
	}
	out, err = view(StoreInspectOptions{Dir: storeDir, View: "audit", JSON: true})
	var av auditView
	if err != nil || json.Unmarshal([]byte(out), &av) != nil || len(av.Records) != 1 || av.Records[0].Prefix != "audit" ||
		!strings.Contains(string(av.Records[0].Value), `"monotonic_seq": "1"`) && !strings.Contains(string(av.Records[0].Value), `"monotonic_seq":"1"`) {
		t.Fatalf("audit --json from the running node: %v\n%s", err, out)
	}
	if out, err = view(StoreInspectOptions{Dir: storeDir, View: "get", Arg: "seq/mark"}); err != nil ||
		!strings.Contains(out, "# read from the running node's admin endpoint") || !strings.Contains(out, `"seq": "1"`) {
		t.Fatalf("get seq/mark from the running node: %v\n%s", err, out)
	}
	if _, err := view(StoreInspectOptions{Dir: storeDir, View: "get", Arg: "cmd/99"}); !errors.Is(err, inspect.ErrKeyNotFound) {
		t.Fatalf("get of a missing key from the running node: %v", err)
	}
	if out, err = view(StoreInspectOptions{Dir: storeDir, View: "prefixes"}); err != nil || !strings.Contains(out, "seq/mark") {
		t.Fatalf("prefixes from the running node: %v\n%s", err, out)
	}
	if out, err = view(StoreInspectOptions{Dir: spoolDir}); err != nil || !regexp.MustCompile(`store\s+spool:`).MatchString(out) ||
		!regexp.MustCompile(`spool depth\s+\d+ batches`).MatchString(out) {
		t.Fatalf("summary of the running node's spool: %v\n%s", err, out)
	}
	if out, err = view(StoreInspectOptions{Dir: spoolDir, View: "scan", Arg: "meta", Limit: 2}); err != nil {
		t.Fatalf("scan of the running node's spool: %v\n%s", err, out)
	}
	if _, err := view(StoreInspectOptions{Dir: spoolDir, View: "audit"}); !errors.Is(err, inspect.ErrNoAudit) {
		t.Fatalf("audit of the spool: %v", err)
	}

	// `node status` names the endpoint and shows the spool.
	var st bytes.Buffer
	if err := NodeStatus(s.nodeDir, &st, false); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"admin endpoint             " + r.Admin.URL, "spool                      "} {
		if !strings.Contains(st.String(), w) {
			t.Errorf("node status lacks %q:\n%s", w, st.String())
		}
	}

	// Stopped: the store is read directly again, and the endpoint is gone.
	s.stopNode()
	if out, err = view(StoreInspectOptions{Dir: storeDir}); err != nil || strings.Contains(out, "read from") {
		t.Fatalf("summary of the stopped node's store: %v\n%s", err, out)
	}
	if _, err := http.Get(r.Admin.URL + "/v1/stores"); err == nil {
		t.Fatalf("the admin endpoint still answers after the node stopped")
	}
	st.Reset()
	if err := NodeStatus(s.nodeDir, &st, false); err != nil || !strings.Contains(st.String(), "read from the spool's files") {
		t.Fatalf("node status of the stopped node: %v\n%s", err, st.String())
	}
}

func TestNodeAdminListensOnLoopbackOnly(t *testing.T) {
	for listen, ok := range map[string]bool{"127.0.0.1:0": true, "[::1]:9000": true, "localhost:0": true, "off": true,
		"0.0.0.0:0": false, ":9000": false, "192.168.1.5:9000": false, "nonsense": false} {
		if err := validateAdminListen(listen); (err == nil) != ok {
			t.Errorf("%s: %v", listen, err)
		}
	}
}
