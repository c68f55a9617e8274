package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/progress"
	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// ctlOut and ctlProgress are where `hashfleet ctl` writes (tests capture them).
var (
	ctlOut      io.Writer = os.Stdout
	ctlProgress io.Writer = os.Stderr
)

const ctlUsage = `usage: hashfleet ctl SUBCOMMAND [flags]

The operator's command line over the cloud API (any mode: demo, combined, server).

subcommands:
  miners     list miners (--state, --search, --limit)
  command    issue a command to miners and follow it to the end with progress:
               --action reboot|start|stop|set_power_target|curtail|uncurtail|... (required)
               --miners ID,ID,…   or   --all [--state S] [--search Q]   (every matching miner)
               --power-w W, --idempotency-key K, --no-wait
             exits 1 unless every miner succeeded
  keys       the org's command-issuance keys: keys list | keys rotate [--overlap D] | keys revoke KEY_ID
  nodes      nodes revoke NODE_ID (cut it off, its credentials revocation-pending) |
             nodes credentials [--state revocation-pending|transfer-pending]
  devices    devices transfer DEVICE_ID --to NODE_ID (the old node re-seals its credentials to the new one)
  discover   scan a node's LAN and follow its progress: --node N --targets CIDR|IP|A-B[,…] [--protocols p,…]

common flags (before or after the subcommand's own):`

// runCtl is `hashfleet ctl`.
func runCtl(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, ctlUsage)
		common := new(ctlCommon)
		fs := flag.NewFlagSet("hashfleet ctl", flag.ContinueOnError)
		common.register(fs)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "miners":
		return ctlMiners(ctx, rest)
	case "command":
		return ctlCommand(ctx, rest)
	case "discover":
		return ctlDiscover(ctx, rest)
	case "keys":
		return ctlKeys(ctx, rest)
	case "nodes":
		return ctlNodes(ctx, rest)
	case "devices":
		return ctlDevices(ctx, rest)
	}
	return fmt.Errorf("unknown ctl subcommand %q: want miners, command, discover, keys, nodes or devices", sub)
}

type ctlCommon struct {
	server, token, caFile string
	timeout               time.Duration
}

func (c *ctlCommon) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "the cloud's API base URL (the demo prints it)")
	fs.StringVar(&c.token, "token", "", "API token (default $"+bootstrap.AdminTokenEnv+")")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA certificate to trust for an https server (default: system roots)")
	fs.DurationVar(&c.timeout, "timeout", 0, "give up waiting after this long (0: never)")
}

func (c *ctlCommon) options() (bootstrap.CtlOptions, error) {
	tok := c.token
	if tok == "" {
		tok = os.Getenv(bootstrap.AdminTokenEnv)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return bootstrap.CtlOptions{}, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return bootstrap.CtlOptions{}, fmt.Errorf("--ca-file %s: no PEM certificate in it", c.caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	cl, err := apiclient.New(c.server, tok, hc)
	if err != nil {
		return bootstrap.CtlOptions{}, err
	}
	return bootstrap.CtlOptions{Client: cl, Out: ctlOut, Progress: ctlProgress, TTY: progress.IsTerminal(ctlProgress),
		Timeout: c.timeout}, nil
}

func parseCtl(name string, args []string, common *ctlCommon, own func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet("hashfleet ctl "+name, flag.ContinueOnError)
	common.register(fs)
	own(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

func ctlMiners(ctx context.Context, args []string) error {
	var common ctlCommon
	var q apiclient.MinerQuery
	if err := parseCtl("miners", args, &common, func(fs *flag.FlagSet) {
		fs.StringVar(&q.State, "state", "", "state names, comma-separated, or \"stale\"")
		fs.StringVar(&q.Search, "search", "", "search text (id, address, model, node)")
		fs.IntVar(&q.Limit, "limit", 50, "rows")
	}); err != nil {
		return err
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	return bootstrap.CtlMiners(ctx, o, q)
}

func ctlCommand(ctx context.Context, args []string) error {
	var common ctlCommon
	var req bootstrap.CtlCommandRequest
	var minerList string
	var all bool
	var sel apiclient.MinerQuery
	if err := parseCtl("command", args, &common, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Action, "action", "", "the action (required)")
		fs.StringVar(&minerList, "miners", "", "miner ids, comma-separated")
		fs.BoolVar(&all, "all", false, "every miner matching --state/--search")
		fs.StringVar(&sel.State, "state", "", "with --all: state names, comma-separated, or \"stale\"")
		fs.StringVar(&sel.Search, "search", "", "with --all: search text")
		fs.Float64Var(&req.PowerTargetW, "power-w", 0, "set_power_target: watts")
		fs.StringVar(&req.IdempotencyKey, "idempotency-key", "", "repeat-safe key (the same key never runs twice)")
		fs.BoolVar(&req.NoWait, "no-wait", false, "return once the command is accepted")
	}); err != nil {
		return err
	}
	if req.Action == "" {
		return errors.New("--action is required")
	}
	switch {
	case minerList != "" && all:
		return errors.New("give --miners or --all, not both")
	case minerList != "":
		for _, id := range strings.Split(minerList, ",") {
			if id = strings.TrimSpace(id); id != "" {
				req.MinerIDs = append(req.MinerIDs, id)
			}
		}
	case all:
		req.Select = &sel
	default:
		return errors.New("name the miners: --miners ID,… or --all")
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	_, err = bootstrap.CtlCommand(ctx, o, req)
	return err
}

func ctlDiscover(ctx context.Context, args []string) error {
	var common ctlCommon
	var req apiclient.DiscoveryRequest
	var targets, protocols string
	if err := parseCtl("discover", args, &common, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Node, "node", "", "the node that scans (required)")
		fs.StringVar(&targets, "targets", "", "CIDRs, IPs or ranges, comma-separated (required)")
		fs.StringVar(&protocols, "protocols", "", "protocols to probe, comma-separated (default all)")
	}); err != nil {
		return err
	}
	if req.Node == "" || targets == "" {
		return errors.New("--node and --targets are required")
	}
	req.Targets = strings.Split(targets, ",")
	if protocols != "" {
		req.Protocols = strings.Split(protocols, ",")
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	_, err = bootstrap.CtlDiscover(ctx, o, req)
	return err
}

func ctlKeys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("keys: want list, rotate or revoke KEY_ID")
	}
	var common ctlCommon
	var overlap time.Duration
	op, rest := args[0], args[1:]
	var keyID string
	if op == "revoke" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return errors.New("keys revoke: name the key id (see keys list)")
		}
		keyID, rest = rest[0], rest[1:]
	}
	if err := parseCtl("keys "+op, rest, &common, func(fs *flag.FlagSet) {
		if op == "rotate" {
			fs.DurationVar(&overlap, "overlap", 0, "how long the old key stays valid (default the server's, 24h)")
		}
	}); err != nil {
		return err
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	switch op {
	case "list":
		return bootstrap.CtlKeys(ctx, o)
	case "rotate":
		return bootstrap.CtlRotateKey(ctx, o, overlap)
	case "revoke":
		return bootstrap.CtlRevokeKey(ctx, o, keyID)
	}
	return fmt.Errorf("keys: unknown operation %q: want list, rotate or revoke", op)
}
