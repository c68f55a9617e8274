package harness

import (
	"context"
	"fmt"
	"time"
)

// pairView is GET /api/v1/pairs/{id}.
type pairView struct {
	ID      string `json:"id"`
	Holder  string `json:"holder"`
	Epoch   uint64 `json:"epoch"`
	History []struct {
		From  string    `json:"from"`
		To    string    `json:"to"`
		Epoch uint64    `json:"epoch"`
		At    time.Time `json:"at"`
		Kind  string    `json:"kind"`
	} `json:"history"`
}

// declarePair declares the site's two nodes a pair (nodes[1] the standby) over the site's devices, and
// waits until nodes[0] holds the lease.
func (s *site) declarePair(c *cloud) error {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var p pairView
	body := map[string]any{"site": s.name, "members": []string{s.nodes[0].nodeID, s.nodes[1].nodeID},
		"standby": s.nodes[1].nodeID, "devices": s.minerIDs()}
	if _, err := c.do(ctx, "POST", "/api/v1/pairs", body, &p); err != nil {
		return fmt.Errorf("site %s: declare pair: %w", s.name, err)
	}
	s.pairID = p.ID
	return waitUntil(ctx, 30*time.Second, "the active to hold the lease", func() bool {
		v, err := s.pairStatus(ctx, c)
		return err == nil && v.Holder == s.nodes[0].nodeID
	})
}

func (s *site) pairStatus(ctx context.Context, c *cloud) (pairView, error) {
	var v pairView
	_, err := c.do(ctx, "GET", "/api/v1/pairs/"+s.pairID, nil, &v)
	return v, err
}

// byID returns the site's node with the given node id, nil for none.
func (s *site) byID(id string) *siteNode {
	for _, n := range s.nodes {
		if n.nodeID == id {
			return n
		}
	}
	return nil
}

// holder returns the node holding the pair's lease as the cloud says, and its epoch; with the cloud down,
// the node whose lease status says it holds it.
func (s *site) holder(c *cloud) (*siteNode, uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c.process() != nil {
		if v, err := s.pairStatus(ctx, c); err == nil {
			if n := s.byID(v.Holder); n != nil {
				return n, v.Epoch
			}
		}
	}
	for _, n := range s.nodes {
		p := n.process()
		if p == nil {
			continue
		}
		if st, err := p.Node.LeaseStatus(ctx); err == nil && st.Lease.Holder == n.nodeID && st.Lease.Permit.OK {
			return n, st.Lease.Epoch
		}
	}
	return s.nodes[0], 0
}
