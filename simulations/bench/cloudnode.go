package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// cloudNode is a split-mode node (bootstrap.StartNode, in this process) enrolled with a cloudProc over its
// TLS gateway the way an operator does it: an enrollment code minted through the API, the node's enrollment
// pinning the CA, the fingerprint confirmed through the API, then its devices paired through the API.
type cloudNode struct {
	id   string
	dir  string
	p    *bootstrap.NodeProcess
	opts bootstrap.NodeRunOptions // to start it again
}

// cloudNodeOptions are what a suite varies between its nodes.
type cloudNodeOptions struct {
	name         string
	devices      []*pb.Device
	pollInterval time.Duration
	wrap         func(func(*pb.Device) (miners.Driver, error)) func(*pb.Device) (miners.Driver, error)
	// gossip is the pair gossip's loopback address; writes receives every miner write (failover).
	gossip string
	writes writelog.Log
	// noPair: the devices are not paired here (a standby's come through its pair).
	noPair bool
}

// Bounds of the set-up steps.
const (
	enrollTimeout = time.Minute
	pairTimeout   = 5 * time.Minute
)

// startCloudNode enrolls a node with c, starts it and pairs every device it reports.
func startCloudNode(ctx context.Context, o Options, c *cloudProc, no cloudNodeOptions) (*cloudNode, error) {
	dir, err := os.MkdirTemp("", "hashfleet-bench-node-")
	if err != nil {
		return nil, err
	}
	n := &cloudNode{dir: dir}
	if n.id, err = enroll(ctx, o, c, no.name, dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("enroll %s: %w", no.name, err)
	}
	gossip := no.gossip
	if gossip == "" {
		gossip = "127.0.0.1:0"
	}
	n.opts = bootstrap.NodeRunOptions{DataDir: dir, Devices: no.devices, PollInterval: no.pollInterval, LocalUI: "off",
		AdminListen: bootstrap.NodeAdminOff, GossipListen: gossip, Logger: quietLogger(o.Logger), WrapDrivers: no.wrap,
		WriteLog: no.writes, MaxInFlight: o.MaxInFlight, MaxCommandsInFlight: o.MaxCommandsInFlight}
	if err := n.start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start node %s: %w", no.name, err)
	}
	if no.noPair {
		return n, nil
	}
	if err := pairAll(ctx, c, n.id, len(no.devices)); err != nil {
		return n, errors.Join(fmt.Errorf("pair %s: %w", no.name, err), n.Close())
	}
	return n, nil
}

// start runs the node (again) from its directory.
func (n *cloudNode) start(ctx context.Context) error {
	p, err := bootstrap.StartNode(ctx, n.opts)
	if err != nil {
		return err
	}
	n.p = p
	return nil
}

// kill stops the node as a crash would look to its pair: no lease release, gossip gone without a goodbye.
func (n *cloudNode) kill() error {
	if n.p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollerStopWait)
	defer cancel()
	err := n.p.Node.Kill(ctx)
	err = errors.Join(err, n.p.Stop(ctx))
	n.p = nil
	return err
}

// enroll runs the enrollment of one node against c, confirming it through the API.
func enroll(ctx context.Context, o Options, c *cloudProc, name, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, enrollTimeout)
	defer cancel()
	var code struct {
		Code string `json:"code"`
	}
	if err := c.api.Do(ctx, http.MethodPost, "/api/v1/enrollment-codes", map[string]any{"site": "bench"}, &code); err != nil {
		return "", fmt.Errorf("mint code: %w", err)
	}
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	out := &tailBuffer{max: 4 << 10}
	go func() { // ends once confirmed, or when ctx ends
		e, err := bootstrap.Enroll(ctx, bootstrap.EnrollOptions{Server: c.ready.Gateway, Code: code.Code, DataDir: dir,
			CAFingerprint: c.ready.CAFingerprint, Name: name, Site: "bench", PollInterval: 50 * time.Millisecond,
			Logger: quietLogger(o.Logger)}, out)
		done <- result{e.NodeID, err}
	}()
	var pending struct {
		Nodes []struct {
			NodeID      string `json:"node_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"nodes"`
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	confirmed := false
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return "", fmt.Errorf("%w; its output: %s", r.err, out)
			}
			return r.id, nil
		case <-ctx.Done():
			r := <-done
			return "", errors.Join(ctx.Err(), r.err)
		case <-tick.C:
		}
		if confirmed {
			continue
		}
		if err := c.api.Do(ctx, http.MethodGet, "/api/v1/nodes/pending", nil, &pending); err != nil {
			continue
		}
		for _, p := range pending.Nodes {
			if !strings.Contains(out.String(), p.Fingerprint) {
				continue // not ours (yet)
			}
			if err := c.api.Do(ctx, http.MethodPost, "/api/v1/nodes/"+p.NodeID+"/confirm",
				map[string]string{"fingerprint": p.Fingerprint}, nil); err != nil {
				return "", fmt.Errorf("confirm: %w", err)
			}
			confirmed = true
		}
	}
}

// pairAll waits for the node's n devices to be pending, pairs them, and waits until the API shows each with a
// sample.
func pairAll(ctx context.Context, c *cloudProc, nodeID string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	if err := until(ctx, 100*time.Millisecond, func() (bool, error) {
		err := c.api.Do(ctx, http.MethodGet, "/api/v1/devices/pending?node="+nodeID, nil, &pend)
		return err == nil && len(pend.Devices) >= n, c.alive()
	}); err != nil {
		return fmt.Errorf("%d devices pending: %w", len(pend.Devices), err)
	}
	ids := make([]string, 0, len(pend.Devices))
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	if err := c.api.Do(ctx, http.MethodPost, "/api/v1/nodes/"+nodeID+"/devices", map[string]any{"miner_ids": ids}, nil); err != nil {
		return err
	}
	return nil
}

// waitSeen waits until total miners are in the API, each with a sample.
func waitSeen(ctx context.Context, c *cloudProc, total int, prog Progress) error {
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	return until(ctx, 500*time.Millisecond, func() (bool, error) {
		seen, err := minersSeen(ctx, c)
		if err != nil {
			return false, c.alive()
		}
		prog.Update(int64(seen), fmt.Sprintf("%d of %d miners reporting", seen, total))
		return seen >= total, c.alive()
	})
}

// minersSeen is the number of miners in the API that have reported a sample (state mining).
func minersSeen(ctx context.Context, c *cloudProc) (int, error) {
	page, err := c.api.Miners(ctx, apiclient.MinerQuery{Limit: 1})
	if err != nil {
		return 0, err
	}
	return page.Counts["mining"], nil
}

// until calls cond every period until it reports done or an error, or ctx ends.
func until(ctx context.Context, period time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops the node and removes its directory.
func (n *cloudNode) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), pollerStopWait)
	defer cancel()
	var err error
	if n.p != nil {
		err = n.p.Stop(ctx)
		n.p = nil
	}
	return errors.Join(err, os.RemoveAll(n.dir))
}

// closeNodes stops nodes in parallel.
func closeNodes(nodes []*cloudNode) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
