package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
)

// CtlRevokeNode revokes a node and says what it changed.
func CtlRevokeNode(ctx context.Context, o CtlOptions, nodeID string) error {
	o = o.withDefaults()
	rev, err := o.Client.RevokeNode(ctx, nodeID)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "revoked node %s: %d open streams ended; %d devices' credentials revocation-pending", rev.NodeID,
		rev.StreamsCut, len(rev.Devices))
	if len(rev.Devices) > 0 {
		fmt.Fprintf(o.Out, ": %s", strings.Join(rev.Devices, ", "))
	}
	fmt.Fprintln(o.Out)
	if len(rev.CancelledTransfers) > 0 {
		fmt.Fprintf(o.Out, "transfers cancelled: %s\n", strings.Join(rev.CancelledTransfers, ", "))
	}
	return nil
}

// CtlCredentials lists devices whose credentials need work (state "" for all).
func CtlCredentials(ctx context.Context, o CtlOptions, state string) error {
	o = o.withDefaults()
	devs, err := o.Client.Credentials(ctx, state)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPURPOSE\tSTATE\tHOLDERS\tREVOKED READERS")
	for _, d := range devs {
		for _, c := range d.Credentials {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.DeviceID, c.Purpose, c.State, strings.Join(c.Holders, ","),
				strings.Join(c.RevokedReaders, ","))
		}
	}
	return tw.Flush()
}
