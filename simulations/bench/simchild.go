package bench

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/hashfleet/hashfleet/miners/sim"
)

// ServeSim is the simulator side of an out-of-process site for binaries that are not hashfleet (this
// package's test binary, which re-executes itself, and cmd/benchrun): it takes the flags of
// `hashfleet minersim` that the bench passes, serves the fleet, writes the device list once every listener is
// bound, and returns when ctx ends.
func ServeSim(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("minersim", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := sim.DefaultConfig()
	fs.IntVar(&cfg.Count, "miners", 100, "number of miners")
	fs.BoolVar(&cfg.PerMinerIP, "per-miner-ip", false, "give each miner its own loopback address")
	fs.StringVar(&cfg.BaseIP, "base-ip", sim.DefaultBaseIP, "first miner address with --per-miner-ip")
	fs.IntVar(&cfg.Port, "port", 0, "port")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the per-miner variation")
	fs.StringVar(&cfg.IDPrefix, "id-prefix", sim.DefaultIDPrefix, "miner id prefix")
	devicesOut := fs.String("devices-out", "", "write the device list (JSON) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := sim.Start(cfg)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer f.Close()
	if *devicesOut != "" {
		if err := writeDevices(*devicesOut, f.Devices()); err != nil {
			return fmt.Errorf("write device list: %w", err)
		}
	}
	fmt.Fprintf(out, "minersim: %d miners serving\n", cfg.Count)
	<-ctx.Done()
	return nil
}
