package main

import (
	"context"
	"errors"
	"flag"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
)

// ctlNodes is `hashfleet ctl nodes revoke NODE_ID` and `hashfleet ctl nodes credentials [--state S]`.
func ctlNodes(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("nodes: want revoke NODE_ID or credentials [--state S]")
	}
	var common ctlCommon
	op, rest := args[0], args[1:]
	var nodeID, state string
	if op == "revoke" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return errors.New("nodes revoke: name the node id")
		}
		nodeID, rest = rest[0], rest[1:]
	}
	if err := parseCtl("nodes "+op, rest, &common, func(fs *flag.FlagSet) {
		if op == "credentials" {
			fs.StringVar(&state, "state", "", "revocation-pending or transfer-pending (default both)")
		}
	}); err != nil {
		return err
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	switch op {
	case "revoke":
		return bootstrap.CtlRevokeNode(ctx, o, nodeID)
	case "credentials":
		return bootstrap.CtlCredentials(ctx, o, state)
	}
	return errors.New("nodes: unknown operation " + op + ": want revoke or credentials")
}
