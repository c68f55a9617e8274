package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/miners/sim"
)

func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("hashfleet "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hashfleet %s [flags]\n\n%s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func runDemo(ctx context.Context, args []string) error {
	fs := newFlags("demo", "Combined mode (cloud + node in one process) with a built-in simulated site.")
	var o bootstrap.DemoOptions
	fs.IntVar(&o.Miners, "miners", 200, "number of simulated miners")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for the stores (default: a temporary directory removed on exit)")
	fs.StringVar(&o.Listen, "listen", bootstrap.DefaultListen, "address of the operator UI and API")
	fs.StringVar(&o.AdminToken, "admin-token", "", "API bearer token (default: $"+bootstrap.AdminTokenEnv+", else generated and printed)")
	fs.DurationVar(&o.PollInterval, "poll-interval", 0, "poll interval per miner (default 5s)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the simulated miners")
	fs.StringVar(&o.Mix, "mix", "", "a mixed site, e.g. antminer=70,proto=30 (kinds antminer, proto, cgminer, whatsminer, braiins; percentages of --miners); default: CGMiner API only")
	fs.BoolVar(&o.ForwardMetrics, "forward-metrics", false, "forward the node's process metrics to the cloud over the events stream (shown in GET /api/v1/nodes)")
	metrics := bootstrap.MetricsFlags(fs, bootstrap.DefaultMetricsListen)
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Metrics = metrics()
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	return bootstrap.RunDemo(ctx, o, os.Stdout)
}

func runCombined(ctx context.Context, args []string) error {
	fs := newFlags("combined", "Cloud server and fleet node in one process, managing the miners in --devices (optional) and those found by discovery and paired through the API.")
	var o bootstrap.CombinedRunOptions
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for the stores (required)")
	fs.StringVar(&o.Listen, "listen", bootstrap.DefaultListen, "address of the operator UI and API")
	fs.StringVar(&o.AdminToken, "admin-token", "", "API bearer token (default: $"+bootstrap.AdminTokenEnv+", else generated and printed)")
	fs.StringVar(&o.DevicesFile, "devices", "", "JSON device list (as written by 'hashfleet minersim --devices-out')")
	fs.DurationVar(&o.PollInterval, "poll-interval", 0, "poll interval per miner (default 5s)")
	fs.BoolVar(&o.ForwardMetrics, "forward-metrics", false, "forward the node's process metrics to the cloud over the events stream (shown in GET /api/v1/nodes)")
	metrics := bootstrap.MetricsFlags(fs, bootstrap.DefaultMetricsListen)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Metrics = metrics()
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	return bootstrap.RunCombined(ctx, o, os.Stdout)
}

func runMinerSim(ctx context.Context, args []string) error {
	fs := newFlags("minersim", "Serve simulated CGMiner-API miners on loopback until interrupted.")
	o := bootstrap.MinerSimOptions{Sim: sim.DefaultConfig()}
	fs.IntVar(&o.Sim.Count, "miners", 100, "number of miners")
	fs.BoolVar(&o.Sim.PerMinerIP, "per-miner-ip", false, "give each miner its own loopback address (from --base-ip), like a real site")
	fs.StringVar(&o.Sim.BaseIP, "base-ip", sim.DefaultBaseIP, "first miner address with --per-miner-ip")
	fs.IntVar(&o.Sim.Port, "port", 0, "port (0: an ephemeral port per miner; with --per-miner-ip e.g. 4028)")
	fs.Int64Var(&o.Sim.Seed, "seed", 1, "seed of the per-miner variation")
	fs.StringVar(&o.Sim.IDPrefix, "id-prefix", sim.DefaultIDPrefix, "miner id prefix")
	fs.StringVar(&o.DevicesOut, "devices-out", "", "write the device list (JSON) here for a node's --devices")
	fs.StringVar(&o.AdminListen, "admin-listen", "", "serve a read-only view of the miners (GET /writes, /miners) on this loopback address")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log) // the simulators log through the default logger
	return bootstrap.RunMinerSim(ctx, o, os.Stdout)
}
