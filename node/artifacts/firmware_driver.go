package artifacts

import (
	"context"
	"fmt"
	"maps"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"google.golang.org/protobuf/proto"
)

// WrapDrivers returns a driver factory whose drivers fetch the image of a firmware update (bound to the
// command id in ctx, checked against its sha256) before the miner's driver runs, and hand it over in
// miners.ParamFirmwarePath. Every spec has the node-local params (that one and miners.ParamNewPassword)
// removed first, so a command can neither name a local file nor pass a login in the clear.
func (c *Client) WrapDrivers(f func(*pb.Device) (miners.Driver, error)) func(*pb.Device) (miners.Driver, error) {
	return func(dev *pb.Device) (miners.Driver, error) {
		d, err := f(dev)
		if err != nil {
			return nil, err
		}
		return &firmwareDriver{Driver: d, c: c, minerID: dev.GetMinerId()}, nil
	}
}

type firmwareDriver struct {
	miners.Driver
	c       *Client
	minerID string
}

func (d *firmwareDriver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	_, fw := spec.GetParams()[miners.ParamFirmwarePath]
	_, pw := spec.GetParams()[miners.ParamNewPassword]
	_, lg := spec.GetParams()[miners.ParamLogsPath]
	if fw || pw || lg || spec.GetAction() == pb.Action_ACTION_FIRMWARE_UPDATE || spec.GetAction() == pb.Action_ACTION_DOWNLOAD_LOGS {
		// Node-local params are the node's to set: whatever the cloud put there is dropped.
		spec = proto.Clone(spec).(*pb.CommandSpec)
		spec.Params = maps.Clone(spec.Params)
		delete(spec.Params, miners.ParamFirmwarePath)
		delete(spec.Params, miners.ParamNewPassword)
		delete(spec.Params, miners.ParamLogsPath)
	}
	if spec.GetAction() == pb.Action_ACTION_DOWNLOAD_LOGS {
		return d.downloadLogs(ctx, spec)
	}
	if spec.GetAction() != pb.Action_ACTION_FIRMWARE_UPDATE {
		return d.Driver.Execute(ctx, spec)
	}
	cmd := miners.CommandIDFrom(ctx)
	if cmd == "" || spec.GetFirmware() == nil {
		return "", fmt.Errorf("firmware update: no command id or no firmware named")
	}
	path, err := d.c.Download(ctx, cmd, spec.GetFirmware())
	if err != nil {
		return "", fmt.Errorf("firmware update: fetch image %s: %w", spec.GetFirmware().GetSha256(), err)
	}
	if spec.Params == nil {
		spec.Params = map[string]string{}
	}
	spec.Params[miners.ParamFirmwarePath] = path
	return d.Driver.Execute(ctx, spec)
}
