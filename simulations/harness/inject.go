package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/simulations/faults"
	"github.com/hashfleet/hashfleet/simulations/oracle"
	"github.com/hashfleet/hashfleet/simulations/schedule"
)

// failoverExpectedAfter: a fault on a pair's active that lasts this long must end with the standby in
// control (the lease's defaults: TTL 6 s + margin 1 s + a retry).
const failoverExpectedAfter = 9 * time.Second

// target is what a fault acts on, resolved when it starts (a pair role names the node holding the lease
// then) and reused when it heals.
type target struct {
	site  *site
	nodes []*siteNode
}

func (t *trial) siteNamed(name string) (*site, error) {
	for _, s := range t.sites {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: no site %q", ErrUnsupportedFault, name)
}

// resolve picks the nodes of fault f now.
func (t *trial) resolve(f schedule.Fault) (target, error) {
	if f.Kind == schedule.KillCloud {
		var tg target
		for _, s := range t.sites {
			tg.nodes = append(tg.nodes, s.nodes...)
		}
		return tg, nil
	}
	s, err := t.siteNamed(f.Target.Site)
	if err != nil {
		return target{}, err
	}
	tg := target{site: s}
	switch {
	case f.Target.Node != "":
		n := s.node(f.Target.Node)
		if n == nil {
			return tg, fmt.Errorf("%w: no node %q at %s", ErrUnsupportedFault, f.Target.Node, s.name)
		}
		tg.nodes = []*siteNode{n}
	case f.Target.Role != "":
		if len(s.nodes) != 2 {
			return tg, fmt.Errorf("%w: role %s at site %s of one node", ErrUnsupportedFault, f.Target.Role, s.name)
		}
		active, _ := s.holder(t.cloud)
		n := active
		if f.Target.Role == schedule.RoleStandby {
			n = s.nodes[0]
			if n == active {
				n = s.nodes[1]
			}
		}
		tg.nodes = []*siteNode{n}
	case f.Kind == schedule.LANPair:
		// The standby's gossip stops: the active is then dead to it, but alive to the cloud.
		active, _ := s.holder(t.cloud)
		n := s.nodes[0]
		if n == active && len(s.nodes) == 2 {
			n = s.nodes[1]
		}
		tg.nodes = []*siteNode{n}
	default:
		tg.nodes = s.nodes
	}
	return tg, nil
}

// inject starts fault f.
func (t *trial) inject(f schedule.Fault) error {
	tg, err := t.resolve(f)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.targets[f.Index] = tg
	t.mu.Unlock()
	now := time.Now()
	names := ""
	for _, n := range tg.nodes {
		names += " " + n.name
	}
	t.progress("  %s start %s →%s", offsetOf(t.start, now), f, names)
	t.faultSpans(f, tg, now, true)
	t.recordLeaseFault(f, tg, now)
	n := tg.nodes[0]
	switch f.Kind {
	case schedule.KillNode:
		if !f.Graceful {
			// No goodbye reaches the cloud (its connections are reset first) nor the partner (gossip halted).
			if err := n.wan.Set(faults.Partition()); err != nil {
				return err
			}
			if p := n.process(); p != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = p.Node.HaltGossip(ctx) // ErrNotPaired outside a pair
				cancel()
			}
		}
		err := n.stop()
		t.closeSpan(n.name, "alive", time.Now())
		if !f.Graceful {
			if herr := n.wan.Set(faults.Pass()); err == nil {
				err = herr
			}
		}
		return err
	case schedule.KillCloud:
		if !f.Graceful {
			for _, m := range tg.nodes {
				if err := m.wan.Set(faults.Partition()); err != nil {
					return err
				}
			}
		}
		err := t.cloud.stop()
		if !f.Graceful {
			for _, m := range tg.nodes {
				if herr := m.wan.Set(faults.Pass()); err == nil {
					err = herr
				}
			}
		}
		return err
	case schedule.WANNode, schedule.WANSite:
		for _, m := range tg.nodes {
			if err := m.wan.Set(faults.Partition()); err != nil {
				return err
			}
		}
		if t.isolates(f, tg) {
			if p := n.process(); p != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				if err := p.Node.HaltGossip(ctx); err != nil {
					return fmt.Errorf("halt %s's gossip: %w", n.name, err)
				}
			}
		}
	case schedule.LANPair:
		p := n.process()
		if p == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := p.Node.HaltGossip(ctx); err != nil {
			return fmt.Errorf("halt %s's gossip: %w", n.name, err)
		}
	case schedule.TransferLease:
		active, _ := tg.site.holder(t.cloud)
		to := tg.site.nodes[0]
		if to == active {
			to = tg.site.nodes[1]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The operator records the request in the cloud, then the holder hands over (its local UI or CLI).
		if _, err := t.cloud.do(ctx, "POST", "/api/v1/pairs/"+tg.site.pairID+"/transfer", map[string]string{"to": to.nodeID}, nil); err != nil {
			return fmt.Errorf("transfer to %s: %w", to.name, err)
		}
		p := active.process()
		if p == nil {
			return fmt.Errorf("transfer: the holder %s is not running", active.name)
		}
		if err := p.Node.TransferLease(ctx); err != nil {
			return fmt.Errorf("transfer from %s to %s: %w", active.name, to.name, err)
		}
	case schedule.Asymmetric:
		dir := faults.Up
		if f.Direction == "down" {
			dir = faults.Down
		}
		return n.wan.Set(faults.Asymmetric(dir))
	case schedule.GatewayDelay:
		return n.wan.Set(faults.Delay(f.Delay, f.Jitter))
	case schedule.GatewayLoss:
		return n.shim.Set(faults.Policy{Drop: f.Probability})
	case schedule.GatewayDup:
		return n.shim.Set(faults.Policy{Duplicate: f.Probability})
	case schedule.GatewayReorder:
		return n.shim.Set(faults.Policy{Reorder: f.Probability})
	case schedule.ClockSkew:
		n.clk.SetOffset(f.Offset)
		n.clk.SetDriftPPM(f.DriftPPM)
	case schedule.DiskFull:
		n.disk.Fill()
	case schedule.MinerHang:
		return tg.site.hang.Set(faults.Asymmetric(faults.Down))
	default:
		return fmt.Errorf("%w: %s", ErrUnsupportedFault, f.Kind)
	}
	return nil
}

// recordLeaseFault notes a fault after which the pair's standby must take over: the holder killed, or
// cut from the cloud long enough for its lease to lapse, or asked to hand over.
func (t *trial) recordLeaseFault(f schedule.Fault, tg target, at time.Time) {
	if tg.site == nil || len(tg.site.nodes) != 2 {
		return
	}
	active, epoch := tg.site.holder(t.cloud)
	hit := len(tg.nodes) == 1 && tg.nodes[0] == active
	expected := false
	switch f.Kind {
	case schedule.KillNode:
		expected = hit && (f.Graceful || f.Duration >= failoverExpectedAfter)
	case schedule.WANNode:
		expected = hit && f.Duration >= failoverExpectedAfter
	case schedule.TransferLease:
		expected = true
	}
	if !expected {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leaseEvs = append(t.leaseEvs, oracle.LeaseEvent{At: at, PairID: tg.site.pairID, NodeID: active.name, Kind: oracle.LeaseFault,
		Epoch: epoch, Detail: f.String()})
}

// faultSpans opens (or closes) the fault's span on each node's row, or the cloud's.
func (t *trial) faultSpans(f schedule.Fault, tg target, at time.Time, open bool) {
	rows := []string{"cloud"}
	if f.Kind != schedule.KillCloud {
		rows = rows[:0]
		for _, n := range tg.nodes {
			rows = append(rows, n.name)
		}
		if f.Kind == schedule.MinerHang {
			rows = []string{f.Target.Miner}
		}
	}
	for _, r := range rows {
		if open {
			t.openSpan(r, "fault", string(f.Kind)+" "+f.Params(), at)
		} else {
			t.closeSpan(r, "fault", at)
		}
	}
}

// heal ends fault f.
func (t *trial) heal(f schedule.Fault) error {
	t.mu.Lock()
	tg, ok := t.targets[f.Index]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("fault %d healed before it started", f.Index)
	}
	now := time.Now()
	t.progress("  %s heal  %s", offsetOf(t.start, now), f)
	t.faultSpans(f, tg, now, false)
	n := tg.nodes[0]
	linkBreaking := false
	switch f.Kind {
	case schedule.KillNode:
		if err := n.start(); err != nil {
			return err
		}
		t.openSpan(n.name, "alive", "", time.Now())
		linkBreaking = true
	case schedule.KillCloud:
		if err := t.cloud.start(); err != nil {
			return err
		}
		linkBreaking = true
	case schedule.WANNode, schedule.WANSite:
		for _, m := range tg.nodes {
			if err := m.wan.Set(faults.Pass()); err != nil {
				return err
			}
		}
		linkBreaking = true
		if t.isolates(f, tg) {
			if err := t.restart(n); err != nil {
				return err
			}
		}
	case schedule.LANPair:
		if err := t.restart(n); err != nil {
			return err
		}
		linkBreaking = true
	case schedule.Asymmetric, schedule.GatewayDelay:
		return n.wan.Set(faults.Pass())
	case schedule.GatewayLoss, schedule.GatewayDup, schedule.GatewayReorder:
		return n.shim.Set(faults.Policy{})
	case schedule.ClockSkew:
		n.clk.Reset()
	case schedule.DiskFull:
		n.disk.Free()
	case schedule.MinerHang:
		return tg.site.hang.Set(faults.Pass())
	}
	if linkBreaking {
		h := heal{fault: f, at: now}
		for _, m := range tg.nodes {
			h.nodes = append(h.nodes, m.name)
		}
		t.mu.Lock()
		t.heals = append(t.heals, h)
		t.mu.Unlock()
	}
	return nil
}

func offsetOf(start, at time.Time) string { return fmt.Sprintf("+%.3fs", at.Sub(start).Seconds()) }

// isolates: a WAN fault on one pair member that also cuts its gossip (Config.WANIsolates).
func (t *trial) isolates(f schedule.Fault, tg target) bool {
	return t.cfg.WANIsolates && f.Kind == schedule.WANNode && tg.site != nil && len(tg.site.nodes) == 2
}

// restart stops and starts n cleanly: halted gossip comes back only with a restart.
func (t *trial) restart(n *siteNode) error {
	if err := n.stop(); err != nil {
		return err
	}
	t.closeSpan(n.name, "alive", time.Now())
	if err := n.start(); err != nil {
		return err
	}
	t.openSpan(n.name, "alive", "", time.Now())
	return nil
}
