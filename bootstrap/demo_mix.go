package bootstrap

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
)

// demoSite is a running simulated site: CGMiner-only (miners/sim) or mixed (miners/sim/mixed).
type demoSite interface {
	Devices() []*pb.Device
	Close() error
}

// startMixedFleet serves a mixed site the way a real one looks: each miner on its own loopback address,
// the kinds in consecutive blocks from 127.40.0.1 (CGMiner API on :4028, Antminer web CGI and Proto REST on
// :8080), falling back to ephemeral ports on 127.0.0.1 when those addresses are taken.
func startMixedFleet(o DemoOptions) (*mixed.Fleet, error) {
	cfg, err := mixed.ParseMix(o.Mix, o.Miners)
	if err != nil {
		return nil, fmt.Errorf("demo: --mix: %w", err)
	}
	cfg.Seed, cfg.PerMinerIP = o.Seed, true
	fleet, err := mixed.Start(cfg)
	if err == nil {
		return fleet, nil
	}
	o.Logger.Warn("per-miner loopback addresses unavailable, using ephemeral ports", slog.Any("err", err))
	cfg.PerMinerIP = false
	if fleet, err = mixed.Start(cfg); err != nil {
		return nil, fmt.Errorf("start simulated site: %w", err)
	}
	return fleet, nil
}

// mixNote describes a mixed site's kinds (" — 140 Antminers, 60 Proto rigs"); "" for a CGMiner-only one.
func mixNote(s demoSite) string {
	f, ok := s.(*mixed.Fleet)
	if !ok {
		return ""
	}
	c := f.Config()
	var parts []string
	for _, k := range []struct {
		n    int
		name string
	}{{c.Antminer, "Antminers"}, {c.Proto, "Proto rigs"}, {c.CGMiner, "CGMiner-only miners"}, {c.Whatsminer, "Whatsminers"},
		{c.Braiins, "Braiins OS miners"}} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k.n, k.name))
		}
	}
	return " — " + strings.Join(parts, ", ")
}
