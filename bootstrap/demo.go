package bootstrap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
)

// DemoOptions configures `hashfleet demo`.
type DemoOptions struct {
	// Miners is the size of the simulated site. Default 200.
	Miners int
	// DataDir keeps the stores; "" uses a temporary directory removed on exit.
	DataDir string
	// Listen is the API/UI address. Default 127.0.0.1:8080.
	Listen string
	// AdminToken; "" takes $HASHFLEET_ADMIN_TOKEN or generates one.
	AdminToken string
	// PollInterval between polls of one miner. Default 5s.
	PollInterval time.Duration
	// Seed varies the simulated miners.
	Seed int64
	// Mix makes a mixed site, "antminer=70,proto=30" (percentages of Miners; kinds antminer, proto and
	// cgminer). Empty: every miner speaks the CGMiner API only, on 127.1.0.x:4028, as before. Antminers use
	// the stock root/root web login; Proto rigs are paired with the node's key on first contact.
	Mix    string
	Logger *slog.Logger
	// Metrics configures the metrics and health server; nil: none (--metrics-listen off).
	Metrics *MetricsConfig
	// ForwardMetrics: --forward-metrics.
	ForwardMetrics bool
}

// RunDemo runs combined mode against a simulated site until ctx is done.
func RunDemo(ctx context.Context, o DemoOptions, out io.Writer) error {
	if o.Miners == 0 {
		o.Miners = 200
	}
	if o.Miners < 1 || o.Miners > 50_000 {
		return fmt.Errorf("demo: --miners %d: want 1 to 50000", o.Miners)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := validateMetrics(o.Metrics); err != nil {
		return err
	}
	token, generated, err := ResolveAdminToken(o.AdminToken)
	if err != nil {
		return err
	}
	dataDir, cleanup, err := demoDataDir(o.DataDir)
	if err != nil {
		return err
	}
	defer cleanup()

	var fleet demoSite
	if o.Mix != "" {
		fleet, err = startMixedFleet(o)
	} else {
		fleet, err = startDemoFleet(o)
	}
	if err != nil {
		return err
	}
	defer fleet.Close()

	c, err := StartCombined(ctx, CombinedOptions{
		DataDir: dataDir, Listen: o.Listen, AdminToken: token, Devices: fleet.Devices(),
		PollInterval: o.PollInterval, Logger: o.Logger, Metrics: o.Metrics, ForwardMetrics: o.ForwardMetrics,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hashfleet demo: %d simulated miners (%s … %s)%s\n", len(fleet.Devices()),
		fleet.Devices()[0].GetAddress(), fleet.Devices()[len(fleet.Devices())-1].GetAddress(), mixNote(fleet))
	fmt.Fprintf(out, "  operator UI   %s\n", c.URL())
	fmt.Fprintf(out, "  API           %sapi/v1/miners  (OpenAPI: %sapi/v1/openapi.json)\n", c.URL(), c.URL())
	fmt.Fprintf(out, "  metrics       %s\n", c.obs.describe())
	if generated {
		fmt.Fprintf(out, "  admin token   %s   (generated; set %s or --admin-token to keep one)\n", token, AdminTokenEnv)
	} else {
		fmt.Fprintln(out, "  admin token   as given")
	}
	fmt.Fprintln(out, "  UI sign-in    user admin, password: the admin token (on first start)")
	fmt.Fprintf(out, "  data          %s\n", dataDir)
	fmt.Fprintln(out, "Ctrl-C stops.")

	<-ctx.Done()
	fmt.Fprintln(out, "hashfleet demo: stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Stop(stopCtx)
}

// startDemoFleet serves the simulated site the way a real one looks (each miner on its own address, port
// 4028), falling back to ephemeral ports on 127.0.0.1 when those addresses are taken.
func startDemoFleet(o DemoOptions) (*sim.Fleet, error) {
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed = o.Miners, o.Seed
	cfg.PerMinerIP, cfg.Port = true, 4028
	fleet, err := sim.Start(cfg)
	if err == nil {
		return fleet, nil
	}
	o.Logger.Warn("per-miner loopback addresses unavailable, using ephemeral ports", slog.Any("err", err))
	cfg.PerMinerIP, cfg.Port = false, 0
	fleet, err = sim.Start(cfg)
	if err != nil {
		return nil, fmt.Errorf("start simulated site: %w", err)
	}
	return fleet, nil
}

func demoDataDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "hashfleet-demo-*")
	if err != nil {
		return "", nil, fmt.Errorf("demo data directory: %w", err)
	}
	return tmp, func() { _ = os.RemoveAll(tmp) }, nil
}
