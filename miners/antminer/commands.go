package antminer

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// Execute performs one command.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	return miners.Execute(ctx, d.id, spec, d.execute)
}

func (d *Driver) execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	switch spec.GetAction() {
	case pb.Action_ACTION_REBOOT:
		if err := d.cgi(ctx, http.MethodGet, "/cgi-bin/reboot.cgi", nil, nil); err != nil {
			return "", err
		}
		return "reboot accepted", nil

	case pb.Action_ACTION_START_MINING, pb.Action_ACTION_UNCURTAIL:
		if err := d.setWorkMode(ctx, "0"); err != nil {
			return "", err
		}
		d.intent = intentNone
		return "work mode normal", nil

	case pb.Action_ACTION_STOP_MINING:
		if err := d.setWorkMode(ctx, "1"); err != nil {
			return "", err
		}
		d.intent = intentStop
		return "work mode sleep (mining stopped)", nil

	case pb.Action_ACTION_CURTAIL:
		if spec.GetPowerTargetW() > 0 {
			mode, err := d.modeFor(spec.GetPowerTargetW())
			if err != nil {
				return "", err
			}
			if err := d.setWorkMode(ctx, mode.WorkMode); err != nil {
				return "", err
			}
			d.intent = intentPartial
			if mode.WorkMode == "1" {
				d.intent = intentNone
			}
			return fmt.Sprintf("curtailed: work mode %s (%v W)", modeName(mode.WorkMode), mode.PowerW), nil
		}
		if err := d.setWorkMode(ctx, "1"); err != nil {
			return "", err
		}
		d.intent = intentNone
		return "curtailed: work mode sleep", nil

	case pb.Action_ACTION_SET_POWER_TARGET:
		mode, err := d.modeFor(spec.GetPowerTargetW())
		if err != nil {
			return "", err
		}
		if err := d.setWorkMode(ctx, mode.WorkMode); err != nil {
			return "", err
		}
		d.intent = intentNone
		return fmt.Sprintf("work mode %s (%v W) for a %v W target", modeName(mode.WorkMode), mode.PowerW, spec.GetPowerTargetW()), nil

	case pb.Action_ACTION_BLINK:
		on, err := miners.LocateEnable(spec.GetParams())
		if err != nil {
			return "", err
		}
		if err := d.cgi(ctx, http.MethodPost, "/cgi-bin/blink.cgi", map[string]bool{"blink": on}, nil); err != nil {
			return "", err
		}
		if on {
			return "blinking until turned off (the CGI has no duration)", nil
		}
		return "blink off", nil

	case pb.Action_ACTION_UPDATE_POOLS:
		return d.updatePools(ctx, spec.GetPools())

	case pb.Action_ACTION_GET_POOLS:
		return d.api.Execute(ctx, spec)

	case pb.Action_ACTION_FIRMWARE_UPDATE:
		return d.firmwareUpdate(ctx, spec)
	case pb.Action_ACTION_FIRMWARE_STATUS:
		return d.firmwareStatus(ctx)
	case pb.Action_ACTION_UPDATE_PASSWORD:
		return d.updatePassword(ctx, spec)
	case pb.Action_ACTION_DOWNLOAD_LOGS:
		return d.downloadLogs(ctx, spec)
	case pb.Action_ACTION_GET_COOLING:
		return d.getCooling(ctx)
	case pb.Action_ACTION_SET_COOLING:
		return d.setCooling(ctx, spec)
	case pb.Action_ACTION_GET_ERRORS:
		t, err := d.api.Poll(ctx)
		if err != nil {
			return "", err
		}
		if len(t.Errors) == 0 {
			return "no errors flagged", nil
		}
		return fmt.Sprintf("%d errors: %s", len(t.Errors), strings.Join(t.Errors, "; ")), nil
	}
	return "", fmt.Errorf("action %v: %w", spec.GetAction(), miners.ErrUnsupported)
}

// modeFor picks the work mode for a power target from Config.PowerModes.
func (d *Driver) modeFor(w float64) (PowerMode, error) {
	if len(d.cfg.PowerModes) == 0 {
		return PowerMode{}, fmt.Errorf("power target: stock Antminer firmware has no power limit, and no PowerModes map one onto a work mode: %w", miners.ErrUnsupported)
	}
	if w <= 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		return PowerMode{}, fmt.Errorf("power target %v W is not a positive number of watts: %w", w, miners.ErrRefused)
	}
	best, found := PowerMode{}, false
	for _, p := range d.cfg.PowerModes {
		if p.PowerW <= w && (!found || p.PowerW > best.PowerW) {
			best, found = p, true
		}
	}
	if !found {
		return PowerMode{}, fmt.Errorf("power target %v W is below every configured work mode: %w", w, miners.ErrUnsupported)
	}
	return best, nil
}

// setConf reads the conf, lets change edit it and writes it back whole, as the firmware's own UI does.
func (d *Driver) setConf(ctx context.Context, change func(minerConf)) error {
	conf, err := d.getConf(ctx)
	if err != nil {
		return err
	}
	change(conf)
	return d.cgi(ctx, http.MethodPost, "/cgi-bin/set_miner_conf.cgi", conf, nil)
}

// setWorkMode writes bitmain-work-mode, and miner-mode for newer firmware.
func (d *Driver) setWorkMode(ctx context.Context, mode string) error {
	n, _ := strconv.Atoi(mode)
	return d.setConf(ctx, func(c minerConf) {
		c["bitmain-work-mode"] = mode
		c["miner-mode"] = n
	})
}

// updatePools writes 1..3 pools in priority order (pool 1 is tried first).
func (d *Driver) updatePools(ctx context.Context, pools []*pb.Pool) (string, error) {
	if len(pools) == 0 || len(pools) > maxPools {
		return "", fmt.Errorf("an Antminer takes 1 to %d pools, got %d: %w", maxPools, len(pools), miners.ErrRefused)
	}
	sorted := slices.Clone(pools)
	slices.SortStableFunc(sorted, func(a, b *pb.Pool) int { return int(a.GetPriority()) - int(b.GetPriority()) })
	out := make([]map[string]string, 0, maxPools)
	for i, p := range sorted {
		if strings.TrimSpace(p.GetUrl()) == "" {
			return "", fmt.Errorf("pool %d has no URL: %w", i, miners.ErrRefused)
		}
		pass := p.GetPassword()
		if pass == "" {
			pass = "x"
		}
		out = append(out, map[string]string{"url": p.GetUrl(), "user": p.GetUser(), "pass": pass})
	}
	for len(out) < maxPools {
		out = append(out, map[string]string{"url": "", "user": "", "pass": ""})
	}
	if err := d.setConf(ctx, func(c minerConf) { c["pools"] = out }); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pools configured, first %s", len(sorted), sorted[0].GetUrl()), nil
}
