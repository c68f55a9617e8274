package whatsminer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// maxPools is the firmware's number of pool slots.
const maxPools = 3

// Execute performs one command.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	return miners.Execute(ctx, d.id, spec, d.execute)
}

func (d *Driver) execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	switch spec.GetAction() {
	case pb.Action_ACTION_REBOOT:
		if err := d.write(ctx, opReboot, 0, nil); err != nil {
			return "", err
		}
		d.curtail = curtailNone
		return "reboot accepted", nil
	case pb.Action_ACTION_START_MINING:
		if err := d.write(ctx, opPowerOn, 0, nil); err != nil {
			return "", err
		}
		if d.curtail == curtailFull {
			d.curtail = curtailNone
		}
		return "mining start (power on) accepted", nil
	case pb.Action_ACTION_STOP_MINING:
		if err := d.write(ctx, opPowerOff, 0, nil); err != nil {
			return "", err
		}
		d.curtail = curtailNone
		return "mining stop (power off) accepted", nil
	case pb.Action_ACTION_SET_POWER_TARGET:
		w, err := miners.PowerTargetWatts(spec.GetPowerTargetW())
		if err != nil {
			return "", err
		}
		if err := d.write(ctx, opPowerLimit, w, nil); err != nil {
			return "", err
		}
		return fmt.Sprintf("power limit set to %d W", w), nil
	case pb.Action_ACTION_CURTAIL:
		return d.curtailTo(ctx, spec.GetPowerTargetW())
	case pb.Action_ACTION_UNCURTAIL:
		return d.uncurtail(ctx, spec.GetPowerTargetW())
	case pb.Action_ACTION_BLINK:
		return d.locate(ctx, spec.GetParams())
	case pb.Action_ACTION_UPDATE_POOLS:
		return d.updatePools(ctx, spec.GetPools())
	case pb.Action_ACTION_GET_POOLS:
		var pools []*pb.Pool
		var err error
		if d.cfg.APIVersion == 3 {
			pools, err = d.poolsV3(ctx)
		} else {
			pools, err = d.poolsV2(ctx)
		}
		if err != nil {
			return "", err
		}
		return miners.DescribePools(pools), nil
	case pb.Action_ACTION_GET_ERRORS:
		var errs []string
		if d.cfg.APIVersion == 3 {
			di, err := d.deviceInfoV3(ctx)
			if err != nil {
				return "", err
			}
			errs = errorsV3(di)
		} else {
			var err error
			if errs, err = d.errorsV2(ctx); err != nil {
				return "", err
			}
		}
		if len(errs) == 0 {
			return "no active errors", nil
		}
		return fmt.Sprintf("%d active errors: %s", len(errs), strings.Join(errs, "; ")), nil
	}
	return "", fmt.Errorf("action %v: %w", spec.GetAction(), miners.ErrUnsupported)
}

// op is one write, named apart from the API version that carries it.
type op uint8

const (
	opReboot op = iota
	opPowerOff
	opPowerOn
	opPowerLimit
	opPools
	opLEDOn  // flash the red LED (set_led / set.system.led)
	opLEDOff // back to the LED's automatic status display
)

// write performs op in the configured API version.
func (d *Driver) write(ctx context.Context, o op, w int, pools []*pb.Pool) error {
	if d.cfg.APIVersion == 3 {
		switch o {
		case opReboot:
			return d.writeV3(ctx, "set.system.reboot", nil)
		case opPowerOff:
			return d.writeV3(ctx, "set.miner.service", "stop")
		case opPowerOn:
			return d.writeV3(ctx, "set.miner.service", "start")
		case opPowerLimit:
			return d.writeV3(ctx, "set.miner.power_limit", w)
		case opPools:
			param := make([]map[string]string, 0, len(pools))
			for _, p := range pools {
				param = append(param, map[string]string{"pool": p.GetUrl(), "worker": p.GetUser(), "passwd": p.GetPassword()})
			}
			return d.writeV3(ctx, "set.miner.pools", param)
		case opLEDOn:
			return d.writeV3(ctx, "set.system.led", map[string]any{"color": "red", "period": 1000, "duration": 500, "start": 0})
		case opLEDOff:
			return d.writeV3(ctx, "set.system.led", "auto")
		}
		return fmt.Errorf("op %d: %w", o, miners.ErrUnsupported)
	}
	var err error
	switch o {
	case opReboot:
		_, err = d.writeV2(ctx, "reboot", nil)
	case opPowerOff:
		_, err = d.writeV2(ctx, "power_off", map[string]string{"respbefore": "true"})
	case opPowerOn:
		_, err = d.writeV2(ctx, "power_on", nil)
	case opPowerLimit:
		_, err = d.writeV2(ctx, "adjust_power_limit", map[string]string{"power_limit": strconv.Itoa(w)})
	case opPools:
		params := map[string]string{}
		for i := range maxPools {
			var p *pb.Pool
			if i < len(pools) {
				p = pools[i]
			}
			n := strconv.Itoa(i + 1)
			params["pool"+n], params["worker"+n], params["passwd"+n] = p.GetUrl(), p.GetUser(), p.GetPassword()
		}
		_, err = d.writeV2(ctx, "update_pools", params)
	case opLEDOn:
		_, err = d.writeV2(ctx, "set_led", map[string]string{"color": "red", "period": "1000", "duration": "500", "start": "0"})
	case opLEDOff:
		_, err = d.writeV2(ctx, "set_led", map[string]string{"param": "auto"})
	default:
		err = fmt.Errorf("op %d: %w", o, miners.ErrUnsupported)
	}
	return err
}

// curtailTo powers the miner off, or with w > 0 lowers its power limit to w after saving the current one.
func (d *Driver) curtailTo(ctx context.Context, target float64) (string, error) {
	if target <= 0 {
		if err := d.write(ctx, opPowerOff, 0, nil); err != nil {
			return "", err
		}
		d.curtail = curtailFull
		return "curtailed (powered off)", nil
	}
	w, err := miners.PowerTargetWatts(target)
	if err != nil {
		return "", err
	}
	if d.curtail != curtailPartial {
		var r reading
		if d.cfg.APIVersion == 3 {
			err = d.readV3(ctx, &r, false)
		} else {
			err = d.readV2(ctx, &r, false)
		}
		if err != nil {
			return "", fmt.Errorf("read the power limit to restore later: %w", err)
		}
		d.limitSaved = r.limitW
	}
	if err := d.write(ctx, opPowerLimit, w, nil); err != nil {
		return "", err
	}
	d.curtail = curtailPartial
	return fmt.Sprintf("curtailed to %d W", w), nil
}

// uncurtail powers the miner on and restores a power limit: the command's, or the one saved by a partial
// curtailment.
func (d *Driver) uncurtail(ctx context.Context, target float64) (string, error) {
	var did []string
	if d.curtail != curtailPartial {
		if err := d.write(ctx, opPowerOn, 0, nil); err != nil {
			return "", err
		}
		did = append(did, "powered on")
	}
	limit := 0
	switch {
	case target > 0:
		w, err := miners.PowerTargetWatts(target)
		if err != nil {
			return "", err
		}
		limit = w
	case d.curtail == curtailPartial && d.limitSaved > 0:
		limit = int(math.Round(d.limitSaved))
	}
	if limit > 0 {
		if err := d.write(ctx, opPowerLimit, limit, nil); err != nil {
			return "", err
		}
		did = append(did, fmt.Sprintf("power limit %d W", limit))
	}
	d.curtail, d.limitSaved = curtailNone, 0
	if len(did) == 0 {
		return "uncurtailed", nil
	}
	return "uncurtailed: " + strings.Join(did, ", "), nil
}

// locate flashes the red LED (param "enable", default true; "false" returns the LED to its automatic
// status display). The firmware flashes until told otherwise.
func (d *Driver) locate(ctx context.Context, params map[string]string) (string, error) {
	enable, err := miners.LocateEnable(params)
	if err != nil {
		return "", err
	}
	if !enable {
		if err := d.write(ctx, opLEDOff, 0, nil); err != nil {
			return "", err
		}
		return "locate LED off", nil
	}
	if err := d.write(ctx, opLEDOn, 0, nil); err != nil {
		return "", err
	}
	return "locate LED flashing until turned off", nil
}

func (d *Driver) updatePools(ctx context.Context, pools []*pb.Pool) (string, error) {
	if len(pools) == 0 || len(pools) > maxPools {
		return "", fmt.Errorf("a Whatsminer takes 1 to %d pools, got %d: %w", maxPools, len(pools), miners.ErrRefused)
	}
	sorted := slices.Clone(pools)
	slices.SortStableFunc(sorted, func(a, b *pb.Pool) int { return int(a.GetPriority()) - int(b.GetPriority()) })
	for i, p := range sorted {
		if strings.TrimSpace(p.GetUrl()) == "" {
			return "", fmt.Errorf("pool %d has no URL: %w", i, miners.ErrRefused)
		}
	}
	if err := d.write(ctx, opPools, 0, sorted); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pools configured", len(sorted)), nil
}
