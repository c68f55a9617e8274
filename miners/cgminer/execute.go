package cgminer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// Execute maps an action onto CGMiner API commands:
//
//	ACTION_REBOOT         restart
//	ACTION_STOP_MINING    pause              (bosminer and other cgminer-compatible firmware)
//	ACTION_START_MINING   resume
//	ACTION_CURTAIL        curtail sleep      (LuxOS)
//	ACTION_UNCURTAIL      curtail wakeup
//	ACTION_UPDATE_POOLS   addpool, switchpool, removepool, poolpriority
//	ACTION_GET_POOLS      pools, as text
//
// Anything else is unsupported over this API.
func (d *Driver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	sc := getScratch()
	defer putScratch(sc)
	var msg string
	var err error
	switch a := spec.GetAction(); a {
	case pb.Action_ACTION_REBOOT:
		msg, err = d.command(ctx, sc, "restart", "")
	case pb.Action_ACTION_STOP_MINING:
		msg, err = d.command(ctx, sc, "pause", "")
	case pb.Action_ACTION_START_MINING:
		msg, err = d.command(ctx, sc, "resume", "")
	case pb.Action_ACTION_CURTAIL:
		msg, err = d.command(ctx, sc, "curtail", "sleep")
	case pb.Action_ACTION_UNCURTAIL:
		msg, err = d.command(ctx, sc, "curtail", "wakeup")
	case pb.Action_ACTION_UPDATE_POOLS:
		msg, err = d.updatePools(ctx, sc, spec.GetPools())
	case pb.Action_ACTION_GET_POOLS:
		msg, err = d.describePools(ctx, sc)
	case pb.Action_ACTION_BLINK:
		err = fmt.Errorf("%w: blink (the CGMiner API has no locator LED command)", miners.ErrUnsupported)
	case pb.Action_ACTION_SET_POWER_TARGET:
		err = fmt.Errorf("%w: power target (the CGMiner API has no power limit command)", miners.ErrUnsupported)
	default:
		err = fmt.Errorf("%w: %v over the CGMiner API", miners.ErrUnsupported, a)
	}
	if err != nil {
		return "", fmt.Errorf("%v on %s: %w", spec.GetAction(), d.id, err)
	}
	return msg, nil
}

// command sends one command and returns "<command> accepted: <firmware Msg>", or an error wrapping
// miners.ErrRefused when the firmware answers STATUS=E.
func (d *Driver) command(ctx context.Context, sc *scratch, command, parameter string) (string, error) {
	req, err := json.Marshal(struct {
		Command   string `json:"command"`
		Parameter string `json:"parameter,omitempty"`
	}{command, parameter})
	if err != nil {
		return "", err
	}
	if err := d.do(ctx, sc, req, command); err != nil {
		return "", err
	}
	r, err := sc.doc.reply(command)
	if err != nil {
		return "", err
	}
	msg, err := sc.doc.status(command, r)
	if err != nil {
		return "", err
	}
	return command + " accepted: " + string(msg), nil
}

// listPools reads the pools and their POOL numbers.
func (d *Driver) listPools(ctx context.Context, sc *scratch) ([]*pb.Pool, []int, error) {
	if err := d.do(ctx, sc, splitRequests[2], "pools"); err != nil {
		return nil, nil, err
	}
	a, err := sc.doc.section("pools", "pools")
	if err != nil {
		return nil, nil, err
	}
	s := sample{strings: &d.strings}
	pools, ids := s.pools(&sc.doc, a)
	return pools, ids, nil
}

func (d *Driver) describePools(ctx context.Context, sc *scratch) (string, error) {
	pools, ids, err := d.listPools(ctx, sc)
	if err != nil {
		return "", err
	}
	if len(pools) == 0 {
		return "no pools", nil
	}
	var b strings.Builder
	for i, p := range pools {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "pool %d %s user %s %s priority %d accepted %d rejected %d",
			ids[i], p.Url, p.User, p.Status, p.Priority, p.Accepted, p.Rejected)
		if p.Active {
			b.WriteString(" active")
		}
	}
	return b.String(), nil
}

// updatePools makes the miner's pools exactly want, in priority order: pools already configured (same URL
// and user) are kept, missing ones added, the first becomes active, the others are removed (highest POOL
// number first, as removal renumbers the ones above), and poolpriority sets the order.
func (d *Driver) updatePools(ctx context.Context, sc *scratch, want []*pb.Pool) (string, error) {
	if len(want) == 0 {
		return "", fmt.Errorf("no pools given")
	}
	want = slices.Clone(want)
	slices.SortStableFunc(want, func(a, b *pb.Pool) int { return cmp.Compare(a.GetPriority(), b.GetPriority()) })

	cur, ids, err := d.listPools(ctx, sc)
	if err != nil {
		return "", err
	}
	added := 0
	for i, id := range matchPools(want, cur, ids) {
		if id >= 0 {
			continue
		}
		w := want[i]
		pass := cmp.Or(w.GetPassword(), "x")
		param := escapeParam(w.GetUrl()) + "," + escapeParam(w.GetUser()) + "," + escapeParam(pass)
		if _, err := d.command(ctx, sc, "addpool", param); err != nil {
			return "", err
		}
		added++
	}
	if added > 0 {
		if cur, ids, err = d.listPools(ctx, sc); err != nil {
			return "", err
		}
	}
	match := matchPools(want, cur, ids)
	if slices.Contains(match, -1) {
		return "", fmt.Errorf("added pools do not appear in the pool list: %w", miners.ErrMalformed)
	}
	if i := slices.Index(ids, match[0]); !cur[i].Active {
		if _, err := d.command(ctx, sc, "switchpool", strconv.Itoa(match[0])); err != nil {
			return "", err
		}
	}
	var remove []int
	for _, id := range ids {
		if !slices.Contains(match, id) {
			remove = append(remove, id)
		}
	}
	slices.Sort(remove)
	for _, id := range slices.Backward(remove) {
		if _, err := d.command(ctx, sc, "removepool", strconv.Itoa(id)); err != nil {
			return "", err
		}
	}
	if len(want) > 1 {
		if cur, ids, err = d.listPools(ctx, sc); err != nil {
			return "", err
		}
		order := make([]string, 0, len(want))
		for _, id := range matchPools(want, cur, ids) {
			order = append(order, strconv.Itoa(id))
		}
		if _, err := d.command(ctx, sc, "poolpriority", strings.Join(order, ",")); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("pools updated: %d added, %d removed, active %s", added, len(remove), want[0].GetUrl()), nil
}

// matchPools returns, for each wanted pool, the POOL number of a configured pool with the same URL and user
// (each used once), or -1.
func matchPools(want, cur []*pb.Pool, ids []int) []int {
	used := make([]bool, len(cur))
	out := make([]int, len(want))
	for i, w := range want {
		out[i] = -1
		for j, c := range cur {
			if !used[j] && c.Url == w.GetUrl() && c.User == w.GetUser() {
				used[j], out[i] = true, ids[j]
				break
			}
		}
	}
	return out
}

// escapeParam escapes the separators of a cgminer parameter list: ',' separates, '\' escapes.
func escapeParam(s string) string {
	if !strings.ContainsAny(s, `,\`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(s)
}
