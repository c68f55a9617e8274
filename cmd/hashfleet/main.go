// Command hashfleet is the single binary of hashfleet: cloud server, fleet node, combined mode, the demo,
// the miner simulator, chaos simulations and the store inspector. Each subcommand parses its flags and hands
// over to bootstrap/; nothing else lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"demo":     {"combined mode + a simulated site (default 200 miners); prints URLs and the admin token", runDemo},
	"combined": {"cloud and node in one process, managing real miners", runCombined},
	"minersim": {"serve a fleet of simulated miners on loopback", runMinerSim},
	"server":   {"the cloud server of split mode: API/UI and the TLS gateway nodes dial", runServer},
	"node":     {"a fleet node of split mode: enroll, run, status", runNode},
	"bench":    {"fleet-scale benchmark suites (poll, baseline, fanout, ingest, spool, failover) against simulated miners", runBench},
	"sim":      {"chaos simulations: seeded faults, invariant oracles, JSON report and SVG timeline", runSim},
	"ctl":      {"operator CLI over the API: miners, bulk commands and discovery with progress", runCtl},
	"store":    {"read-only look at a node's or server's Badger store (store inspect)", runStore},
	"release":  {"signed node releases: keygen, sign, verify (ed25519)", runRelease},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "hashfleet: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "hashfleet %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hashfleet COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'hashfleet COMMAND -h' for a command's flags.")
}
