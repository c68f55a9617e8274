package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hashfleet/hashfleet/simulations/bench"
)

// runBench is `hashfleet bench SUITE... [flags]`: suite names may come before or after the flags.
func runBench(ctx context.Context, args []string) error {
	fs := newFlags("bench", "Fleet-scale benchmark suites against the simulators over real loopback sockets.")
	var o bench.Options
	o.RegisterFlags(fs)
	jsonPath := fs.String("json", "", "write the report (JSON) here")
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
