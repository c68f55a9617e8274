package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim/mixed"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

func ctlFor(t *testing.T, s *site) (CtlOptions, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cl, err := apiclient.New(s.base, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, prog := &bytes.Buffer{}, &bytes.Buffer{}
	return CtlOptions{Client: cl, Out: out, Progress: prog, PollInterval: 100 * time.Millisecond, Timeout: 30 * time.Second}, out, prog
}

// TestCtlBulkCommandShowsProgress drives `hashfleet ctl command --all` against a real combined site: every
// miner is selected through the paged API, the command is followed to its end with progress lines, and the
// miners are stopped on the simulators.
func TestCtlBulkCommandShowsProgress(t *testing.T) {
	s := startSite(t, 40, 200*time.Millisecond, nil)
	waitFor(t, 15*time.Second, "40 miners mining", func() bool {
		n := 0
		for _, m := range s.miners() {
			if m.State == "mining" {
				n++
			}
		}
		return n == 40
	})
	o, out, prog := ctlFor(t, s)
	cmd, err := CtlCommand(context.Background(), o, CtlCommandRequest{
		CommandRequest: apiclient.CommandRequest{Action: "stop"},
		Select:         &apiclient.MinerQuery{Limit: 7}, // several pages
	})
	if err != nil {
		t.Fatalf("ctl command: %v\n%s", err, out)
	}
	if len(cmd.Results) != 40 || cmd.Summary["succeeded"] != 40 {
		t.Fatalf("results %d, summary %v", len(cmd.Results), cmd.Summary)
	}
	if !strings.Contains(prog.String(), "stop ×40") || !strings.Contains(prog.String(), "done") {
		t.Fatalf("progress output lacks the label or the final line:\n%s", prog)
	}
	if !strings.Contains(out.String(), "(succeeded 40)") {
		t.Fatalf("results table:\n%s", out)
	}
	for _, m := range s.fleet.Miners() {
		if m.Snapshot().Mining {
			t.Fatalf("miner %s still mining on the simulator", m.ID())
		}
	}
}

// TestCtlRefusals: a bad token, an unknown action and an unknown miner come back as the API's errors, and
// a command that fails on some miners returns ErrCommandIncomplete with the failures listed.
func TestCtlRefusals(t *testing.T) {
	s := startSite(t, 3, 200*time.Millisecond, nil)
	o, out, _ := ctlFor(t, s)
	ctx := context.Background()

	bad := o
	bad.Client = &apiclient.Client{BaseURL: s.base, Token: "wrong"}
	var apiErr *apiclient.Error
	if err := CtlMiners(ctx, bad, apiclient.MinerQuery{}); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := CtlCommand(ctx, o, CtlCommandRequest{CommandRequest: apiclient.CommandRequest{Action: "explode", MinerIDs: []string{"x"}}}); !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "unknown action") {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := CtlCommand(ctx, o, CtlCommandRequest{CommandRequest: apiclient.CommandRequest{Action: "reboot", MinerIDs: []string{"no-such-miner"}}}); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("unknown miner: %v", err)
	}
	if _, err := CtlCommand(ctx, o, CtlCommandRequest{CommandRequest: apiclient.CommandRequest{Action: "reboot"}, Select: &apiclient.MinerQuery{Search: "nothing-matches-this"}}); err == nil || !strings.Contains(err.Error(), "no miner matches") {
		t.Fatalf("empty selection: %v", err)
	}
	// A miner that is down: its command cannot succeed.
	victim := s.fleet.Miners()[0]
	victim.Down()
	_, err := CtlCommand(ctx, o, CtlCommandRequest{CommandRequest: apiclient.CommandRequest{Action: "reboot"}, Select: &apiclient.MinerQuery{}})
	if !errors.Is(err, ErrCommandIncomplete) || !strings.Contains(out.String(), victim.ID()) {
		t.Fatalf("failing miner: %v\n%s", err, out)
	}
}

// TestCtlDiscoverShowsProgress scans a mixed simulated site through `ctl discover`.
func TestCtlDiscoverShowsProgress(t *testing.T) {
	cfg := mixed.DefaultConfig()
	cfg.Antminer, cfg.Proto, cfg.CGMiner, cfg.Seed = 3, 3, 3, 11
	cfg.PerMinerIP, cfg.BaseIP = true, "127.78.0.1"
	s := startMixedSite(t, cfg, 300*time.Millisecond, false)
	first, last, _ := s.mix.Range()
	o, out, prog := ctlFor(t, s.site)
	scan, err := CtlDiscover(context.Background(), o, apiclient.DiscoveryRequest{
		Targets: []string{first.String() + "-" + last.String()},
		Ports:   &apiclient.Ports{CGMiner: []int{4028}, AntminerWeb: []int{8080}, Proto: []int{8080}},
	})
	if err != nil {
		t.Fatalf("ctl discover: %v\n%s", err, out)
	}
	if scan.Progress.Found != 9 || len(scan.Devices) != 9 {
		t.Fatalf("found %d (%d devices listed), want 9\n%s", scan.Progress.Found, len(scan.Devices), out)
	}
	if !strings.Contains(prog.String(), "discovery "+first.String()) || !strings.Contains(prog.String(), "done") {
		t.Fatalf("progress:\n%s", prog)
	}
	if !strings.Contains(out.String(), "9 devices found") {
		t.Fatalf("summary:\n%s", out)
	}
}

// TestCtlKeyLifecycle rotates the org key through `ctl keys`, waits for the split-mode node to trust the
// new key, lists both, revokes the old one, and sees commands still run under the new key.
func TestCtlKeyLifecycle(t *testing.T) {
	s := startSplit(t, splitOpts{})
	cl, err := apiclient.New(s.base, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	o := CtlOptions{Client: cl, Out: out}
	ctx := context.Background()
	before, err := cl.Keys(ctx)
	if err != nil || len(before) != 1 {
		t.Fatalf("keys before: %v %v", before, err)
	}
	old := before[0].KeyID
	if err := CtlRotateKey(ctx, o, time.Hour); err != nil {
		t.Fatal(err)
	}
	after, _ := cl.Keys(ctx)
	var fresh string
	for _, k := range after {
		if k.KeyID != old {
			fresh = k.KeyID
		}
	}
	if len(after) != 2 || fresh == "" || !strings.Contains(out.String(), "new active key "+fresh) || !strings.Contains(out.String(), s.nodeID) {
		t.Fatalf("after rotation: %+v\n%s", after, out)
	}
	waitFor(t, 10*time.Second, "the node to trust the new key", func() bool { return s.nodeTrust(fresh) == "trusted" })
	out.Reset()
	if err := CtlKeys(ctx, o); err != nil || !strings.Contains(out.String(), old) || !strings.Contains(out.String(), fresh) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	out.Reset()
	if err := CtlRevokeKey(ctx, o, old); err != nil || !strings.Contains(out.String(), "revoked "+old) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	var apiErr *apiclient.Error
	if err := CtlRevokeKey(ctx, o, "default/k_nosuchkey"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("revoke unknown key: %v", err)
	}
	s.waitMining(3)
	s.waitCommand(s.command("reboot", "sim-1"), "succeeded")
}
