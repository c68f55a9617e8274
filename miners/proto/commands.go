package proto

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// maxPools is the contract's limit on configured pools.
const maxPools = 3

// Execute performs one command.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	return miners.Execute(ctx, d.id, spec, d.execute)
}

func (d *Driver) execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	switch spec.GetAction() {
	case pb.Action_ACTION_REBOOT:
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/system/reboot", nil, nil, nil, true); err != nil {
			return "", err
		}
		d.curtail = curtailNone
		return "reboot accepted", nil

	case pb.Action_ACTION_START_MINING:
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/mining/start", nil, nil, nil, true); err != nil {
			return "", err
		}
		if d.curtail == curtailFull {
			d.curtail = curtailNone
		}
		return "mining start accepted", nil

	case pb.Action_ACTION_STOP_MINING:
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/mining/stop", nil, nil, nil, true); err != nil {
			return "", err
		}
		d.curtail = curtailNone
		return "mining stop accepted", nil

	case pb.Action_ACTION_SET_POWER_TARGET:
		w, err := miners.PowerTargetWatts(spec.GetPowerTargetW())
		if err != nil {
			return "", err
		}
		got, err := d.setTarget(ctx, w)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("power target set to %d W", got), nil

	case pb.Action_ACTION_CURTAIL:
		if spec.GetPowerTargetW() > 0 {
			w, err := miners.PowerTargetWatts(spec.GetPowerTargetW())
			if err != nil {
				return "", err
			}
			got, err := d.setTarget(ctx, w)
			if err != nil {
				return "", err
			}
			d.curtail = curtailPartial
			return fmt.Sprintf("curtailed to %d W", got), nil
		}
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/mining/stop", nil, nil, nil, true); err != nil {
			return "", err
		}
		d.curtail = curtailFull
		return "curtailed (mining stopped)", nil

	case pb.Action_ACTION_UNCURTAIL:
		return d.uncurtail(ctx, spec)

	case pb.Action_ACTION_BLINK:
		return d.locate(ctx, spec.GetParams())

	case pb.Action_ACTION_UPDATE_POOLS:
		return d.updatePools(ctx, spec.GetPools())

	case pb.Action_ACTION_GET_POOLS:
		pools, err := d.pools(ctx)
		if err != nil {
			return "", err
		}
		return miners.DescribePools(pools), nil

	case pb.Action_ACTION_FIRMWARE_UPDATE:
		return d.firmwareUpdate(ctx, spec)
	case pb.Action_ACTION_FIRMWARE_STATUS:
		return d.firmwareStatus(ctx)
	case pb.Action_ACTION_GET_ERRORS:
		errs, err := d.errorList(ctx)
		if err != nil {
			return "", err
		}
		if len(errs) == 0 {
			return "no active errors", nil
		}
		return fmt.Sprintf("%d active errors: %s", len(errs), strings.Join(errs, "; ")), nil
	}
	return "", fmt.Errorf("action %v: %w", spec.GetAction(), miners.ErrUnsupported)
}

type targetReply struct {
	PowerTargetW   num `json:"power_target_watts"`
	MinW           num `json:"power_target_min_watts"`
	MaxW           num `json:"power_target_max_watts"`
	DefaultTargetW num `json:"default_power_target_watts"`
}

func (d *Driver) setTarget(ctx context.Context, w int) (int, error) {
	var out targetReply
	if _, err := d.call(ctx, http.MethodPut, "/api/v1/mining/target", nil, map[string]int{"power_target_watts": w}, &out, true); err != nil {
		return 0, err
	}
	if out.PowerTargetW.ok {
		return int(out.PowerTargetW.v), nil
	}
	return w, nil
}

// uncurtail starts mining when the rig is not hashing and restores the power target: the command's, or the
// rig's default after a partial curtailment by this driver.
func (d *Driver) uncurtail(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	var ms miningReply
	if _, err := d.call(ctx, http.MethodGet, "/api/v1/mining", nil, nil, &ms, true); err != nil {
		return "", err
	}
	var did []string
	switch ms.Status.Status {
	case "Mining", "DegradedMining", "PoweringOn":
	default:
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/mining/start", nil, nil, nil, true); err != nil {
			return "", err
		}
		did = append(did, "mining started")
	}
	target := 0
	switch {
	case spec.GetPowerTargetW() > 0:
		w, err := miners.PowerTargetWatts(spec.GetPowerTargetW())
		if err != nil {
			return "", err
		}
		target = w
	case d.curtail == curtailPartial:
		var tr targetReply
		if _, err := d.call(ctx, http.MethodGet, "/api/v1/mining/target", nil, nil, &tr, true); err != nil {
			return "", err
		}
		if !tr.DefaultTargetW.ok || tr.DefaultTargetW.v <= 0 {
			return "", fmt.Errorf("rig reports no default power target to restore: %w", miners.ErrMalformed)
		}
		target = int(tr.DefaultTargetW.v)
	}
	if target > 0 {
		got, err := d.setTarget(ctx, target)
		if err != nil {
			return "", err
		}
		did = append(did, fmt.Sprintf("power target %d W", got))
	}
	d.curtail = curtailNone
	if len(did) == 0 {
		return "uncurtailed (already mining)", nil
	}
	return "uncurtailed: " + strings.Join(did, ", "), nil
}

// locate lights the LED. Params: "seconds" (0 = until turned off; default Config.LocateSeconds) and
// "enable" ("false" turns it off).
func (d *Driver) locate(ctx context.Context, params map[string]string) (string, error) {
	q := url.Values{}
	enable, err := miners.LocateEnable(params)
	if err != nil {
		return "", err
	}
	secs := d.cfg.LocateSeconds
	if v, ok := params["seconds"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", fmt.Errorf("param seconds=%q is not a whole number of seconds: %w", v, miners.ErrRefused)
		}
		secs = n
	}
	q.Set("enable", strconv.FormatBool(enable))
	if enable {
		q.Set("led_on_time", strconv.Itoa(secs))
	}
	if _, err := d.call(ctx, http.MethodPost, "/api/v1/system/locate", q, nil, nil, true); err != nil {
		return "", err
	}
	switch {
	case !enable:
		return "locate LED off", nil
	case secs == 0:
		return "locate LED on until turned off", nil
	}
	return fmt.Sprintf("locate LED on for %d s", secs), nil
}

type poolConfig struct {
	Name     string `json:"name,omitempty"`
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
	Priority int    `json:"priority"`
}

// updatePools replaces the rig's pools: 1 to 3, ordered by Priority (then given order), renumbered 0..n-1
// so duplicate priorities cannot be refused.
func (d *Driver) updatePools(ctx context.Context, pools []*pb.Pool) (string, error) {
	if len(pools) == 0 || len(pools) > maxPools {
		return "", fmt.Errorf("a Proto rig takes 1 to %d pools, got %d: %w", maxPools, len(pools), miners.ErrRefused)
	}
	sorted := slices.Clone(pools)
	slices.SortStableFunc(sorted, func(a, b *pb.Pool) int { return int(a.GetPriority()) - int(b.GetPriority()) })
	body := make([]poolConfig, 0, len(sorted))
	for i, p := range sorted {
		if strings.TrimSpace(p.GetUrl()) == "" {
			return "", fmt.Errorf("pool %d has no URL: %w", i, miners.ErrRefused)
		}
		body = append(body, poolConfig{URL: p.GetUrl(), Username: p.GetUser(), Password: p.GetPassword(), Priority: i})
	}
	if _, err := d.call(ctx, http.MethodPost, "/api/v1/pools", nil, body, nil, true); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pools configured", len(body)), nil
}
