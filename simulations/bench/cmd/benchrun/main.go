// Command benchrun runs the fleet-scale benchmark suites of simulations/bench, with the flags `hashfleet
// bench` has:
//
//	go build -o /tmp/benchrun ./simulations/bench/cmd/benchrun
//	/tmp/benchrun --miners 10000 --duration 60s --json poll-10k.json poll baseline
//
// It is also its own simulator process (`benchrun minersim …`, see bench.ServeSim) and its own cloud process
// (`benchrun bench serve-cloud …`, see bench.ServeCloud), so it needs nothing but itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashfleet/hashfleet/simulations/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "minersim" {
		return bench.ServeSim(ctx, args[1:], os.Stdout)
	}
	if len(args) > 1 && args[0] == "bench" && args[1] == "serve-cloud" { // the fanout and ingest suites' cloud process
		return bench.ServeCloud(ctx, args[2:], os.Stdout)
	}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	var o bench.Options
	o.RegisterFlags(fs)
	jsonPath := fs.String("json", "", "write the report (JSON) here")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: benchrun [flags] SUITE...\n\nsuites:\n")
		for _, s := range bench.Suites() {
			fmt.Fprintf(fs.Output(), "  %-9s %s\n", s.Name(), s.Describe())
		}
		fmt.Fprintf(fs.Output(), "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.Run(ctx, fs.Args(), o, os.Stdout, *jsonPath)
}
