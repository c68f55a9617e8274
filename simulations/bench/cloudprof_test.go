package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The profile server answers a window's CPU profile over real HTTP, refuses malformed or out-of-range
// windows and a second profile while one runs, and stops with Close.
func TestProfileServer(t *testing.T) {
	p, err := startProfileServer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	get := func(query string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + p.addr() + "/profile" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, q := range []string{"", "?seconds=", "?seconds=x", "?seconds=0", "?seconds=-3", "?seconds=601", "?seconds=1.5"} {
		if code, body := get(q); code != http.StatusBadRequest || !strings.Contains(string(body), "seconds") {
			t.Errorf("%q: %d %s", q, code, body)
		}
	}
	if resp, err := http.Post("http://"+p.addr()+"/profile?seconds=1", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A profile in progress: a second request is refused, the first one gets a pprof (gzip) profile.
	first := make(chan []byte, 1)
	go func() {
		code, body := get("?seconds=1")
		if code != http.StatusOK {
			body = nil
		}
		first <- body
	}()
	time.Sleep(300 * time.Millisecond) // the first has started
	if code, _ := get("?seconds=1"); code != http.StatusConflict {
		t.Errorf("a second profile while one runs: %d, want 409", code)
	}
	body := <-first
	if len(body) == 0 {
		t.Fatal("no profile")
	}
	if _, err := gzip.NewReader(bytes.NewReader(body)); err != nil {
		t.Fatalf("profile is not pprof's gzip: %v", err)
	}
}

// profileWindow writes the profile to its path; a cloud without a profile server and a cancelled window
// are reported, not hung on.
func TestProfileWindow(t *testing.T) {
	p, err := startProfileServer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	path := filepath.Join(t.TempDir(), "w.prof")
	c := &cloudProc{ready: cloudReady{Profile: p.addr()}}
	if err := c.profileWindow(context.Background(), 300*time.Millisecond, path).wait(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile file: %v %v", fi, err)
	}
	if err := c.profileWindow(context.Background(), time.Second, "").wait(); err != nil {
		t.Errorf("no path: %v", err)
	}
	none := &cloudProc{}
	if err := none.profileWindow(context.Background(), time.Second, path).wait(); err == nil {
		t.Error("a cloud without a profile server: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	wp := c.profileWindow(ctx, 10*time.Second, filepath.Join(t.TempDir(), "cut.prof"))
	time.Sleep(100 * time.Millisecond)
	cancel()
	done := make(chan error, 1)
	go func() { done <- wp.wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("cancelled window: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled window did not end")
	}
}
