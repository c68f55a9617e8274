package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/simulations/bench"
)

// runBench is `hashfleet bench SUITE... [flags]`: suite names may come before or after the flags.
func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "serve-cloud" { // the fanout and ingest suites' cloud process
		return bench.ServeCloud(ctx, args[1:], os.Stdout)
	}
	fs := newFlags("bench", "Fleet-scale benchmark suites against the simulators over real loopback sockets.")
	var o bench.Options
	o.RegisterFlags(fs)
	jsonPath := fs.String("json", "", "write the report (JSON) here")
	logLevel := fs.String("log-level", "error", "log level of the node under test: debug, info, warn, error")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output(), "\nsuites:")
		for _, s := range bench.Suites() {
			fmt.Fprintf(fs.Output(), "  %-9s %s\n", s.Name(), s.Describe())
		}
	}
	names, rest := leadingNames(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	names = append(names, fs.Args()...)
	if len(names) == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	return bench.Run(ctx, names, o, os.Stdout, *jsonPath)
}

// leadingNames splits off the positional arguments before the first flag.
func leadingNames(args []string) (names, rest []string) {
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			return args[:i], args[i:]
		}
	}
	return args, nil
}
