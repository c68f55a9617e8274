package bootstrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// CtlTransferDevice moves a device to node to and follows the transfer command to its end: the outgoing
// node re-seals the device's credentials to the new owner (and hands a Proto rig to its key), then the
// cloud moves the ownership map. It fails unless the transfer succeeded.
func CtlTransferDevice(ctx context.Context, o CtlOptions, minerID, to string) (apiclient.Command, error) {
	o = o.withDefaults()
	st, err := o.Client.TransferDevice(ctx, minerID, to)
	if err != nil {
		return apiclient.Command{}, err
	}
	fmt.Fprintf(o.Out, "transfer of %s from node %s to node %s started (command %s, %d credentials to re-seal)\n",
		st.MinerID, st.From, st.To, st.CommandID, st.Reseal)
	if len(st.Unsealable) > 0 {
		fmt.Fprintf(o.Out, "no trusted node holds %s: enter them again after the transfer\n", strings.Join(st.Unsealable, ", "))
	}
	cmd, err := pollUntil(ctx, o, func(ctx context.Context) (apiclient.Command, bool, error) {
		c, err := o.Client.Command(ctx, st.CommandID)
		return c, err == nil && c.Done(), err
	})
	if err != nil {
		return cmd, fmt.Errorf("transfer %s: %w", minerID, err)
	}
	printResults(o.Out, cmd)
	if cmd.Summary["succeeded"] < len(cmd.Results) {
		return cmd, fmt.Errorf("transfer %s: %w", minerID, ErrCommandIncomplete)
	}
	fmt.Fprintf(o.Out, "%s now belongs to node %s\n", minerID, st.To)
	return cmd, nil
}
