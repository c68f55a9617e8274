package braiins

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
)

// maxPools is how many pools UPDATE_POOLS configures at most.
const maxPools = 3

// poolGroupName names the one pool group UPDATE_POOLS writes.
const poolGroupName = "hashfleet"

// Execute performs one command.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	return miners.Execute(ctx, d.id, spec, d.execute)
}

func (d *Driver) execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	switch spec.GetAction() {
	case pb.Action_ACTION_REBOOT:
		if err := d.call(ctx, "reboot", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := bospb.NewActionsServiceClient(c).Reboot(ctx, &bospb.RebootRequest{})
			return err
		}); err != nil {
			return "", err
		}
		d.curtail, d.token = curtailNone, "" // sessions do not survive a reboot
		return "reboot accepted", nil
	case pb.Action_ACTION_STOP_MINING:
		already, err := d.pause(ctx)
		if err != nil {
			return "", err
		}
		d.curtail = curtailNone
		return map[bool]string{false: "mining paused", true: "mining was already paused"}[already], nil
	case pb.Action_ACTION_START_MINING:
		already, err := d.resume(ctx)
		if err != nil {
			return "", err
		}
		if d.curtail == curtailFull {
			d.curtail = curtailNone
		}
		return map[bool]string{false: "mining resumed", true: "mining was already running"}[already], nil
	case pb.Action_ACTION_SET_POWER_TARGET:
		w, err := watts(spec.GetPowerTargetW())
		if err != nil {
			return "", err
		}
		got, err := d.setTarget(ctx, w)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("power target set to %d W", got), nil
	case pb.Action_ACTION_CURTAIL:
		return d.curtailTo(ctx, spec.GetPowerTargetW())
	case pb.Action_ACTION_UNCURTAIL:
		return d.uncurtail(ctx, spec.GetPowerTargetW())
	case pb.Action_ACTION_BLINK:
		return d.locate(ctx, spec.GetParams())
	case pb.Action_ACTION_UPDATE_POOLS:
		return d.updatePools(ctx, spec.GetPools())
	case pb.Action_ACTION_GET_POOLS:
		return d.api.Execute(ctx, spec)
	case pb.Action_ACTION_GET_ERRORS:
		return d.errorList(ctx)
	}
	return "", fmt.Errorf("action %v: %w", spec.GetAction(), miners.ErrUnsupported)
}

func (d *Driver) pause(ctx context.Context) (bool, error) {
	var already bool
	err := d.call(ctx, "pause mining", func(ctx context.Context, c *grpc.ClientConn) error {
		rep, err := bospb.NewActionsServiceClient(c).PauseMining(ctx, &bospb.PauseMiningRequest{})
		already = rep.GetAlreadyPaused()
		return err
	})
	return already, err
}

func (d *Driver) resume(ctx context.Context) (bool, error) {
	var already bool
	err := d.call(ctx, "resume mining", func(ctx context.Context, c *grpc.ClientConn) error {
		rep, err := bospb.NewActionsServiceClient(c).ResumeMining(ctx, &bospb.ResumeMiningRequest{})
		already = rep.GetAlreadyMining()
		return err
	})
	return already, err
}

func (d *Driver) setTarget(ctx context.Context, w uint64) (uint64, error) {
	var got uint64
	err := d.call(ctx, "set power target", func(ctx context.Context, c *grpc.ClientConn) error {
		rep, err := bospb.NewPerformanceServiceClient(c).SetPowerTarget(ctx, &bospb.SetPowerTargetRequest{
			SaveAction: bospb.SaveAction_SAVE_ACTION_SAVE_AND_APPLY, PowerTarget: &bospb.Power{Watt: w}})
		got = rep.GetPowerTarget().GetWatt()
		return err
	})
	if err != nil {
		return 0, err
	}
	if got == 0 {
		got = w
	}
	d.targetW = got
	return got, nil
}

// curtailTo pauses mining, or with target > 0 lowers the power target to it.
func (d *Driver) curtailTo(ctx context.Context, target float64) (string, error) {
	if target <= 0 {
		if _, err := d.pause(ctx); err != nil {
			return "", err
		}
		d.curtail = curtailFull
		return "curtailed (mining paused)", nil
	}
	w, err := watts(target)
	if err != nil {
		return "", err
	}
	if d.curtail != curtailPartial {
		d.targetBefore = d.targetW
	}
	got, err := d.setTarget(ctx, w)
	if err != nil {
		return "", err
	}
	d.curtail = curtailPartial
	return fmt.Sprintf("curtailed to %d W", got), nil
}

// uncurtail resumes mining after a full curtailment and restores a power target: the command's, or the
// one from before a partial curtailment when this driver knows it.
func (d *Driver) uncurtail(ctx context.Context, target float64) (string, error) {
	var did []string
	if d.curtail != curtailPartial {
		if _, err := d.resume(ctx); err != nil {
			return "", err
		}
		did = append(did, "mining resumed")
	}
	var w uint64
	switch {
	case target > 0:
		var err error
		if w, err = watts(target); err != nil {
			return "", err
		}
	case d.curtail == curtailPartial && d.targetBefore > 0:
		w = d.targetBefore
	case d.curtail == curtailPartial:
		did = append(did, fmt.Sprintf("power target left at %d W (the target before curtailment is unknown; give power_target_w)", d.targetW))
	}
	if w > 0 {
		got, err := d.setTarget(ctx, w)
		if err != nil {
			return "", err
		}
		did = append(did, fmt.Sprintf("power target %d W", got))
	}
	d.curtail, d.targetBefore = curtailNone, 0
	if len(did) == 0 {
		return "uncurtailed", nil
	}
	return "uncurtailed: " + strings.Join(did, ", "), nil
}

// locate sets the locator LED; param "enable" ("false" turns it off; default on).
func (d *Driver) locate(ctx context.Context, params map[string]string) (string, error) {
	enable, err := miners.LocateEnable(params)
	if err != nil {
		return "", err
	}
	var on bool
	if err := d.call(ctx, "locate", func(ctx context.Context, c *grpc.ClientConn) error {
		rep, err := bospb.NewActionsServiceClient(c).SetLocateDeviceStatus(ctx, &bospb.SetLocateDeviceStatusRequest{Enable: enable})
		on = rep.GetEnabled()
		return err
	}); err != nil {
		return "", err
	}
	return map[bool]string{true: "locate LED on", false: "locate LED off"}[on], nil
}

func (d *Driver) updatePools(ctx context.Context, pools []*pb.Pool) (string, error) {
	if len(pools) == 0 || len(pools) > maxPools {
		return "", fmt.Errorf("UPDATE_POOLS takes 1 to %d pools, got %d: %w", maxPools, len(pools), miners.ErrRefused)
	}
	sorted := slices.Clone(pools)
	slices.SortStableFunc(sorted, func(a, b *pb.Pool) int { return int(a.GetPriority()) - int(b.GetPriority()) })
	group := &bospb.PoolGroupConfiguration{Uid: poolGroupName, Name: poolGroupName}
	for i, p := range sorted {
		if strings.TrimSpace(p.GetUrl()) == "" {
			return "", fmt.Errorf("pool %d has no URL: %w", i, miners.ErrRefused)
		}
		group.Pools = append(group.Pools, &bospb.PoolConfiguration{Uid: strconv.Itoa(i), Url: p.GetUrl(), User: p.GetUser(),
			Password: proto.String(p.GetPassword()), Enabled: proto.Bool(true)})
	}
	if err := d.call(ctx, "set pool groups", func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := bospb.NewPoolServiceClient(c).SetPoolGroups(ctx, &bospb.SetPoolGroupsRequest{
			SaveAction: bospb.SaveAction_SAVE_ACTION_SAVE_AND_APPLY, PoolGroups: []*bospb.PoolGroupConfiguration{group}})
		return err
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pools configured", len(group.Pools)), nil
}

func (d *Driver) errorList(ctx context.Context) (string, error) {
	var errs []*bospb.MinerError
	if err := d.call(ctx, "get errors", func(ctx context.Context, c *grpc.ClientConn) error {
		rep, err := bospb.NewMinerServiceClient(c).GetErrors(ctx, &bospb.GetErrorsRequest{})
		errs = rep.GetErrors()
		return err
	}); err != nil {
		return "", err
	}
	if len(errs) == 0 {
		return "no active errors", nil
	}
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		s := e.GetMessage()
		if c := e.GetComponent(); c != "" {
			s = c + ": " + s
		}
		if ts := e.GetTimestampS(); ts > 0 {
			s += " since " + time.Unix(ts, 0).UTC().Format(time.DateTime)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d active errors: %s", len(errs), strings.Join(parts, "; ")), nil
}

func watts(w float64) (uint64, error) {
	n, err := miners.PowerTargetWatts(w)
	return uint64(n), err
}
