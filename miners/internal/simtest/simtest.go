// Package simtest starts simulated fleets for tests: on a fake clock, closed when the test ends, with a
// plain HTTP client for the web simulators.
package simtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Harness is a running fleet F on a fake clock.
type Harness[F io.Closer] struct {
	T      *testing.T
	Clock  *clock.Fake
	Fleet  F
	Client *http.Client // plain HTTP, 5s timeout
}

// Start starts a fleet with start from cfg, set up by setup for the harness's fake clock (started at the
// present time) and then changed by mod when not nil. The fleet is closed when the test ends.
func Start[C any, F io.Closer](t *testing.T, start func(C) (F, error), cfg C, setup func(*C, *clock.Fake), mod func(*C)) *Harness[F] {
	t.Helper()
	clk := clock.NewFake(time.Now())
	setup(&cfg, clk)
	if mod != nil {
		mod(&cfg)
	}
	f, err := start(cfg)
	if err != nil {
		t.Fatalf("start fleet: %v", err)
	}
	tr := &http.Transport{}
	h := &Harness[F]{T: t, Clock: clk, Fleet: f, Client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := f.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
	})
	return h
}

// Do sends one request with the Client, with authz as its Authorization (none when empty) and body as JSON
// (none when nil), and returns the reply's status, headers and body.
func (h *Harness[F]) Do(method, url, authz string, body any) (int, http.Header, []byte) {
	h.T.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		h.T.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}
