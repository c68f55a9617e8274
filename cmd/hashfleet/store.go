package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
)

// storeOut is where `hashfleet store` writes its views (tests capture it).
var storeOut io.Writer = os.Stdout

const storeUsage = `usage: hashfleet store inspect --dir DIR [summary|prefixes|get KEY|scan PREFIX|audit] [flags]

Read-only look at a node's or server's Badger store (the node's spool is a store of its own, in
<data-dir>/store/spool). Values are decoded from protobuf to JSON. The directory is never written. A store a
running node holds comes from that node's loopback admin endpoint instead (named in its status.json): a
consistent snapshot of the live store. A running server's store cannot be opened; stop it first.

views:
  summary       store kind, seq high-water mark, lease epoch, spool depth and oldest entry, owned devices,
                key counts per prefix (the default)
  prefixes      key counts and sizes per prefix
  get KEY       one key, e.g. seq/mark, cmd/42, audit/1764324000000/3, spool/t/1500, or 0x… for raw bytes
  scan PREFIX   keys under a prefix name (audit, command, telemetry, …) or key text (nq/node-1/)
  audit         the newest audit records, oldest first

flags:`

// runStore is `hashfleet store`: for now one subcommand, inspect.
func runStore(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, storeUsage)
		storeFlags(new(bootstrap.StoreInspectOptions)).PrintDefaults()
		return flag.ErrHelp
	}
	if args[0] != "inspect" {
		return fmt.Errorf("unknown store command %q: want inspect", args[0])
	}
	o, err := parseStoreInspect(args[1:])
	if err != nil {
		return err
	}
	return bootstrap.RunStoreInspect(ctx, o, storeOut)
}

func storeFlags(o *bootstrap.StoreInspectOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("hashfleet store inspect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), storeUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Dir, "dir", "", "the store's directory (required)")
	fs.BoolVar(&o.JSON, "json", false, "machine-readable JSON output")
	fs.IntVar(&o.Limit, "limit", 20, "scan: most keys shown")
	fs.IntVar(&o.Tail, "tail", 20, "audit: how many of the newest records")
	fs.BoolVar(&o.RecoverCopy, "recover-copy", false, "a store its process did not close (killed, crashed): inspect a recovered private copy")
	fs.StringVar(&o.Kind, "kind", "", "read the store as this kind (node, spool, server) instead of detecting it")
	return fs
}

// parseStoreInspect reads flags and the view in any order: `inspect --dir D audit --tail 5` and
// `inspect audit --dir D --tail 5` mean the same.
func parseStoreInspect(args []string) (bootstrap.StoreInspectOptions, error) {
	var o bootstrap.StoreInspectOptions
	fs := storeFlags(&o)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) > 0 {
		o.View, pos = pos[0], pos[1:]
	}
	switch o.View {
	case "get", "scan":
		if len(pos) == 0 {
			return o, fmt.Errorf("%s needs a %s", o.View, map[string]string{"get": "KEY", "scan": "PREFIX"}[o.View])
		}
		o.Arg, pos = pos[0], pos[1:]
	}
	if len(pos) > 0 {
		return o, fmt.Errorf("unexpected arguments %s", strings.Join(pos, " "))
	}
	return o, nil
}
