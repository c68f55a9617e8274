package bootstrap

import (
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

func TestMetricsFlags(t *testing.T) {
	parse := func(def string, args ...string) *MetricsConfig {
		t.Helper()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		get := MetricsFlags(fs, def)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return get()
	}
	if c := parse(DefaultNodeMetricsListen); c == nil || c.Listen != "127.0.0.1:9465" || c.ReadinessTimeout != DefaultReadinessTimeout {
		t.Fatalf("node default: %+v", c)
	}
	if c := parse(DefaultMetricsListen, "--metrics-listen", "off"); c != nil {
		t.Fatalf("--metrics-listen off: %+v", c)
	}
	c := parse(DefaultMetricsListen, "--metrics-listen", "0.0.0.0:9464", "--metrics-basic-auth-user", "prom")
	if c.Listen != "0.0.0.0:9464" || c.BasicAuthUser != "prom" {
		t.Fatalf("flags: %+v", c)
	}
	c.BasicAuthUser = ""
	if err := validateMetrics(c); !errors.Is(err, ErrMetricsUnprotected) {
		t.Fatalf("non-loopback without auth: %v", err)
	}
	if err := validateMetrics(nil); err != nil {
		t.Fatalf("off: %v", err)
	}
}

// TestInformationalChecks: an informational check is reported but never makes the process not ready.
func TestInformationalChecks(t *testing.T) {
	h := NewHealthChecks()
	h.Register("node_store", func(context.Context) error { return nil })
	h.RegisterInformational("cloud_link", func(context.Context) error { return errors.New("cloud link down") })
	rep := runChecks(context.Background(), h, DefaultReadinessTimeout)
	if rep.Status != "ready" || len(rep.Checks) != 2 || rep.Checks[0].Name != "cloud_link" || rep.Checks[0].OK ||
		!rep.Checks[0].Informational || rep.Checks[0].Error != "cloud link down" || rep.Checks[1].Informational {
		t.Fatalf("%+v", rep)
	}
	h.Register("node_store", func(context.Context) error { return errors.New("closed") })
	if rep := runChecks(context.Background(), h, DefaultReadinessTimeout); rep.Status != "not_ready" {
		t.Fatalf("a failing check that is not informational: %+v", rep)
	}
}
