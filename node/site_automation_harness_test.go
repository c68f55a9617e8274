package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/prometheus/client_golang/prometheus"
)

// automationSite is a node running simulated miners over real TCP, with the org keys its site policies are
// signed with.
type automationSite struct {
	t     *testing.T
	fleet *sim.Fleet
	node  *node.Node
	cfg   node.Config
	org   *signing.OrgKeys
	clk   clock.Clock
	reg   *prometheus.Registry
}

type siteOpts struct {
	miners int
	clock  clock.Clock // nil: real
	poll   time.Duration
	auto   node.SiteAutomationConfig
	mutate func(*node.Config)
	// reboot is how long a simulated miner stays down after a restart, on the clock (default 2s).
	reboot time.Duration
}

func startAutomationSite(t *testing.T, o siteOpts) *automationSite {
	t.Helper()
	if o.clock == nil {
		o.clock = clock.Real()
	}
	if o.reboot == 0 {
		o.reboot = 2 * time.Second
	}
	scfg := sim.DefaultConfig()
	scfg.Count, scfg.Seed, scfg.Clock, scfg.RebootDuration = o.miners, 11, o.clock, o.reboot
	fleet, err := sim.Start(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	org, err := signing.NewOrgKeys("org1", o.clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.OrgID, cfg.Site, cfg.DataDir, cfg.Clock, cfg.Logger = "n1", "org1", "site-a", t.TempDir(), o.clock, quietLogger()
	cfg.Devices, cfg.DriverFactory, cfg.CommandKeys = fleet.Devices(), node.DefaultDriverFactory(cgminer.Config{}), org.PublicKeys()
	cfg.PollInterval, cfg.PollJitter, cfg.FailureThreshold = o.poll, o.poll/10, 2
	cfg.MinRebootTime = time.Second
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.SiteAutomation = o.auto
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	s := &automationSite{t: t, fleet: fleet, cfg: cfg, org: org, clk: o.clock, reg: reg}
	s.node = start(t, cfg)
	t.Cleanup(func() {
		if s.node != nil {
			stop(t, s.node)
		}
	})
	return s
}

// restart stops the node and starts it again on the same data directory.
func (s *automationSite) restart() {
	s.t.Helper()
	stop(s.t, s.node)
	s.cfg.Registerer = prometheus.NewRegistry()
	s.node = start(s.t, s.cfg)
}

// signPolicy signs p (org and site filled) with the org's active key.
func (s *automationSite) signPolicy(p automation.Policy) *pb.SitePolicy {
	s.t.Helper()
	p.Org, p.Site = "org1", "site-a"
	sp, err := automation.SignPolicy(p, s.org, s.clk.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return &pb.SitePolicy{Body: sp.Body, KeyId: sp.KeyID, Signature: sp.Signature}
}

func (s *automationSite) install(p automation.Policy) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.node.InstallSitePolicy(ctx, s.signPolicy(p), "test"); err != nil {
		s.t.Fatal(err)
	}
}

// allMining waits until every miner is mining with a good sample.
func (s *automationSite) allMining(timeout time.Duration, advance func()) {
	s.t.Helper()
	n := len(s.fleet.Miners())
	waitUntil(s.t, timeout, fmt.Sprintf("%d miners mining", n), advance, func() bool {
		l, err := s.node.Miners(context.Background())
		if err != nil || len(l) != n {
			return false
		}
		for _, m := range l {
			if m.State != pb.MinerState_MINER_STATE_MINING || m.LastGood == nil {
				return false
			}
		}
		return true
	})
}

// waitUntil polls cond every 20ms (calling advance first, when set) until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, advance func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if advance != nil {
			advance()
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartMiner sends the CGMiner "restart" command to a simulated miner directly, as a power blip or an
// operator at the miner would: the node did not ask for it.
func restartMiner(t *testing.T, m *sim.Miner) {
	t.Helper()
	c, err := net.DialTimeout("tcp", m.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, _ := json.Marshal(map[string]string{"command": "restart"})
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_, _ = c.Read(buf)
}

// gauge reads a gauge (first series of the family) from the registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// ticker advances a fake clock by step every interval of real time until stopped, so the whole node (polls,
// rules, schedules, ramps) runs faster than real time with every deadline on the controlled clock.
type ticker struct {
	stop chan struct{}
	done sync.WaitGroup
}

func runClock(clk *clock.Fake, step, every time.Duration) *ticker {
	tk := &ticker{stop: make(chan struct{})}
	tk.done.Add(1)
	go func() {
		defer tk.done.Done()
		for {
			select {
			case <-tk.stop:
				return
			case <-time.After(every):
				clk.Advance(step)
			}
		}
	}()
	return tk
}

func (tk *ticker) Stop() {
	close(tk.stop)
	tk.done.Wait()
}

// curtailFast ramps one step every 200ms, verifies after 700ms (two polls of 300ms) and retries after 500ms.
func curtailFast() curtail.Config {
	c := curtail.DefaultConfig()
	c.StepKW, c.StepInterval, c.SettleTime, c.TickInterval = 1000, 200*time.Millisecond, 700*time.Millisecond, 100*time.Millisecond
	c.RetryBackoff, c.MaxRetryBackoff = 500*time.Millisecond, 2*time.Second
	return c
}
