package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
)

// adminToken is the API bearer token of the trial's cloud.
const adminToken = "chaos-admin-token"

// cloud is the trial's server: started, stopped and restarted on the same addresses and data directory.
type cloud struct {
	mu      sync.Mutex
	opts    bootstrap.ServerOptions
	proc    *bootstrap.ServerProcess
	base    string
	gateway string
	journal string
	caFP    string
	http    *http.Client
}

func startCloud(dir string, cfg Config) (*cloud, error) {
	c := &cloud{journal: filepath.Join(dir, "ingest.jsonl"), http: &http.Client{Timeout: 5 * time.Second}}
	c.opts = bootstrap.ServerOptions{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0",
		AdminToken: adminToken, DebugInject: true, DebugIngestLog: c.journal, DrainReconnectAfter: 100 * time.Millisecond,
		Logger: cfg.Logger}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cloud) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return nil
	}
	opts := c.opts
	opts.Registry = nil // a fresh registry per start: a restarted server registers its collectors again
	var p *bootstrap.ServerProcess
	var err error
	// The ports of a stopped server may linger a moment; retry briefly.
	for range 50 {
		if p, err = bootstrap.StartServer(context.Background(), opts); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("start cloud: %w", err)
	}
	c.proc, c.base, c.gateway = p, "http://"+p.HTTPAddr, p.GatewayAddr
	c.opts.Listen, c.opts.GatewayListen = p.HTTPAddr, p.GatewayAddr
	if p.CA != nil {
		c.caFP = p.CA.Fingerprint()
	}
	return nil
}

func (c *cloud) stop() error {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("stop cloud: %w", err)
	}
	return nil
}

// process returns the running server, nil while it is down.
func (c *cloud) process() *bootstrap.ServerProcess {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// do calls the operator API; it returns the status (0 when the call failed) and decodes a 2xx body into out.
func (c *cloud) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return resp.StatusCode, nil
}

// waitUntil polls cond every 50ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
