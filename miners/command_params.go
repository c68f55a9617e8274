package miners

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Execute runs exec for spec and names the action and minerID on its error ("reboot m1: ..."), the form
// every driver's Execute reports in.
func Execute(ctx context.Context, minerID string, spec *pb.CommandSpec, exec func(context.Context, *pb.CommandSpec) (string, error)) (string, error) {
	msg, err := exec(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", strings.ToLower(strings.TrimPrefix(spec.GetAction().String(), "ACTION_")), minerID, err)
	}
	return msg, nil
}

// LocateEnable reads a locate command's "enable" param: true when absent; a value that is not a boolean is
// refused.
func LocateEnable(params map[string]string) (bool, error) {
	v, ok := params["enable"]
	if !ok {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("param enable=%q is not a boolean: %w", v, ErrRefused)
	}
	return b, nil
}

// PowerTargetWatts rounds a power target to whole watts; one that is not a positive number of watts (at
// most 1 MW) is refused.
func PowerTargetWatts(w float64) (int, error) {
	if w <= 0 || math.IsNaN(w) || math.IsInf(w, 0) || w > 1e6 {
		return 0, fmt.Errorf("power target %v W is not a positive number of watts: %w", w, ErrRefused)
	}
	return int(math.Round(w)), nil
}

// DescribePools is the one-line message for a pool list: "N pools: #prio url user u (status); ...".
func DescribePools(pools []*pb.Pool) string {
	if len(pools) == 0 {
		return "no pools configured"
	}
	parts := make([]string, 0, len(pools))
	for _, p := range pools {
		parts = append(parts, fmt.Sprintf("#%d %s user %s (%s)", p.GetPriority(), p.GetUrl(), p.GetUser(), p.GetStatus()))
	}
	return fmt.Sprintf("%d pools: %s", len(pools), strings.Join(parts, "; "))
}
