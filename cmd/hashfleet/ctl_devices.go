package main

import (
	"context"
	"errors"
	"flag"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
)

// ctlDevices is `hashfleet ctl devices transfer DEVICE_ID --to NODE_ID`.
func ctlDevices(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "transfer" || strings.HasPrefix(args[1], "-") {
		return errors.New("devices: want transfer DEVICE_ID --to NODE_ID")
	}
	id, rest := args[1], args[2:]
	var common ctlCommon
	var to string
	if err := parseCtl("devices transfer", rest, &common, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "the node that takes the device over (required)")
	}); err != nil {
		return err
	}
	if to == "" {
		return errors.New("devices transfer: --to NODE_ID is required")
	}
	o, err := common.options()
	if err != nil {
		return err
	}
	_, err = bootstrap.CtlTransferDevice(ctx, o, id, to)
	return err
}
