package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/sim"
)

const testToken = "test-admin-token-0123456789"

// site is combined mode over real sockets: simulated miners on loopback TCP, the node polling them, the
// cloud API on a real HTTP listener.
type site struct {
	t     *testing.T
	fleet *sim.Fleet
	c     *Combined
	base  string
}

func startSite(t *testing.T, count int, poll time.Duration, wrap func(*pb.Device, miners.Driver) miners.Driver) *site {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed, cfg.RebootDuration = count, 7, 3*time.Second
	fleet, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	df := DriverFactory(nil)
	if wrap != nil {
		inner := df
		df = func(d *pb.Device) (miners.Driver, error) {
			drv, err := inner(d)
			if err != nil {
				return nil, err
			}
			return wrap(d, drv), nil
		}
	}
	c, err := StartCombined(context.Background(), CombinedOptions{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminToken: testToken,
		Devices: fleet.Devices(), PollInterval: poll, DriverFactory: df, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop combined: %v", err)
		}
	})
	return &site{t: t, fleet: fleet, c: c, base: "http://" + c.HTTPAddr}
}

type minerView struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	Stale       bool    `json:"stale"`
	HashrateTHs float64 `json:"hashrate_ths"`
	PowerW      float64 `json:"power_w"`
	TempMaxC    float64 `json:"temp_max_c"`
	Error       string  `json:"error"`
	LastSeen    string  `json:"last_seen"`
}

func (s *site) do(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (s *site) miners() map[string]minerView {
	var page struct {
		Total int         `json:"total"`
		Items []minerView `json:"items"`
	}
	if code := s.do("GET", "/api/v1/miners?limit=100000", nil, &page); code != 200 {
		s.t.Fatalf("GET /api/v1/miners: HTTP %d", code)
	}
	m := make(map[string]minerView, len(page.Items))
	for _, it := range page.Items {
		m[it.ID] = it
	}
	return m
}

func (s *site) miner(id string) minerView {
	var v minerView
	if code := s.do("GET", "/api/v1/miners/"+id, nil, &v); code != 200 {
		s.t.Fatalf("GET miner %s: HTTP %d", id, code)
	}
	return v
}

func (s *site) command(action string, ids ...string) string {
	var res struct {
		CommandID string `json:"command_id"`
	}
	if code := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": ids, "action": action}, &res); code != 202 {
		s.t.Fatalf("POST command %s: HTTP %d", action, code)
	}
	return res.CommandID
}

type commandView struct {
	Status  string `json:"status"`
	Results []struct {
		MinerID string `json:"miner_id"`
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"results"`
}

func (s *site) commandStatus(id string) commandView {
	var v commandView
	if code := s.do("GET", "/api/v1/commands/"+id, nil, &v); code != 200 {
		s.t.Fatalf("GET command %s: HTTP %d", id, code)
	}
	return v
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCombinedEndToEnd(t *testing.T) {
	const n, poll = 50, 500 * time.Millisecond
	s := startSite(t, n, poll, nil)

	// Every miner appears with telemetry within two poll intervals (plus start-up and one batch interval).
	start := time.Now()
	waitFor(t, 2*poll+2*time.Second, "all 50 miners mining with telemetry", func() bool {
		ms := s.miners()
		if len(ms) != n {
			return false
		}
		for _, m := range ms {
			if m.State != "mining" || m.HashrateTHs <= 0 || m.PowerW <= 0 || m.TempMaxC <= 0 {
				return false
			}
		}
		return true
	})
	t.Logf("all %d miners mining with telemetry after %s", n, time.Since(start).Round(time.Millisecond))

	// Values in the API are what the simulated miner serves.
	snap := s.fleet.Miner("sim-5").Snapshot()
	if v := s.miner("sim-5"); v.HashrateTHs < snap.HashrateTHs*0.8 || v.HashrateTHs > snap.HashrateTHs*1.2 {
		t.Fatalf("sim-5 hashrate in API %.2f TH/s, simulator serves %.2f", v.HashrateTHs, snap.HashrateTHs)
	}

	// A reboot through the API reaches the miner, which goes rebooting → mining; the command succeeds.
	target := s.fleet.Miner("sim-7")
	id := s.command("reboot", "sim-7")
	waitFor(t, 5*time.Second, "restart in sim-7's write log", func() bool {
		for _, w := range target.WriteLog() {
			if w.Command == "restart" && w.Accepted {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "sim-7 rebooting", func() bool { return s.miner("sim-7").State == "rebooting" })
	waitFor(t, 10*time.Second, "sim-7 mining again", func() bool { return s.miner("sim-7").State == "mining" })
	waitFor(t, 10*time.Second, "reboot command succeeded", func() bool {
		c := s.commandStatus(id)
		return c.Status == "succeeded" && len(c.Results) == 1 && c.Results[0].Status == "succeeded"
	})
	// Only the target was written to.
	for _, m := range s.fleet.Miners() {
		if m.ID() != "sim-7" && len(m.WriteLog()) != 0 {
			t.Fatalf("%s got writes %v; only sim-7 was commanded", m.ID(), m.WriteLog())
		}
	}

	// Stop and start go through as well.
	stop := s.command("stop", "sim-9")
	waitFor(t, 5*time.Second, "sim-9 stopped", func() bool { return s.miner("sim-9").State == "stopped" })
	if !s.fleet.Miner("sim-9").Snapshot().Paused {
		t.Fatal("sim-9 reads stopped in the API but the simulator is not paused")
	}
	waitFor(t, 5*time.Second, "stop succeeded", func() bool { return s.commandStatus(stop).Status == "succeeded" })
	s.command("start", "sim-9")
	waitFor(t, 5*time.Second, "sim-9 mining", func() bool { return s.miner("sim-9").State == "mining" })
}

func TestCombinedFaultsStayIsolated(t *testing.T) {
	const poll = 300 * time.Millisecond
	var panics atomic.Int32
	s := startSite(t, 20, poll, func(d *pb.Device, drv miners.Driver) miners.Driver {
		if d.GetMinerId() == "sim-2" {
			return &panicOnce{Driver: drv, panics: &panics}
		}
		return drv
	})
	waitFor(t, 5*time.Second, "20 miners mining", func() bool {
		ms := s.miners()
		if len(ms) != 20 {
			return false
		}
		for _, m := range ms {
			if m.State != "mining" {
				return false
			}
		}
		return true
	})
	if panics.Load() == 0 {
		t.Fatal("the panicking driver never ran")
	}

	// Down → unreachable → back → mining.
	s.fleet.Miner("sim-0").Down()
	waitFor(t, 5*time.Second, "sim-0 unreachable", func() bool { return s.miner("sim-0").State == "unreachable" })
	// Malformed replies: a clear error on that miner only.
	s.fleet.Miner("sim-1").SetFault(sim.FaultMalformed)
	waitFor(t, 5*time.Second, "sim-1 shows a malformed-reply error", func() bool {
		v := s.miner("sim-1")
		return v.State == "unreachable" && strings.Contains(v.Error, "malformed")
	})
	// Everyone else keeps polling: their last-seen keeps moving.
	before := s.miners()
	time.Sleep(4 * poll)
	after := s.miners()
	for id, m := range after {
		if id == "sim-0" || id == "sim-1" {
			continue
		}
		if m.State != "mining" || m.LastSeen == before[id].LastSeen {
			t.Fatalf("%s stopped polling while others failed: %+v (before %+v)", id, m, before[id])
		}
	}
	s.fleet.Miner("sim-0").Up()
	s.fleet.Miner("sim-1").SetFault(sim.FaultNone)
	waitFor(t, 5*time.Second, "sim-0 and sim-1 recover", func() bool {
		return s.miner("sim-0").State == "mining" && s.miner("sim-1").State == "mining" && s.miner("sim-1").Error == ""
	})
}

// panicOnce panics in its first Poll, as a driver bug would.
type panicOnce struct {
	miners.Driver
	panics *atomic.Int32
}

func (p *panicOnce) Poll(ctx context.Context) (*pb.Telemetry, error) {
	if p.panics.Add(1) == 1 {
		panic(fmt.Sprintf("driver bug on %s", "sim-2"))
	}
	return p.Driver.Poll(ctx)
}
