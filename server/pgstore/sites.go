package pgstore

import (
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Site records (server/store.Sites): table site_policies holds each site's signed automation policy as it
// was sent to the site's nodes; curtail_status each node's latest curtailment status.

var _ store.Sites = (*Store)(nil)

// validSite is the Badger store's rule for site names: 1 to 128 bytes, no '/' or NUL.
func validSite(site string) error {
	if site == "" || len(site) > 128 || strings.ContainsAny(site, "/\x00") {
		return fmt.Errorf("site %q: 1 to 128 bytes, no '/': %w", site, store.ErrInvalidKey)
	}
	return nil
}

// PutSitePolicy implements store.Sites.
func (s *Store) PutSitePolicy(site string, p *pb.SitePolicy) error {
	if err := validSite(site); err != nil {
		return fmt.Errorf("put site policy: %w", err)
	}
	v, err := marshal(p)
	if err != nil {
		return fmt.Errorf("put site policy %s: %w", site, err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO site_policies (site, record) VALUES ($1, $2)
		ON CONFLICT (site) DO UPDATE SET record = EXCLUDED.record, updated_at = now()`, site, v); err != nil {
		return fmt.Errorf("put site policy %s: %w", site, err)
	}
	return nil
}

// SitePolicy implements store.Sites.
func (s *Store) SitePolicy(site string) (*pb.SitePolicy, error) {
	if err := validSite(site); err != nil {
		return nil, fmt.Errorf("site policy: %w", err)
	}
	p := &pb.SitePolicy{}
	if err := s.getProto(p, "site policy of "+site, `SELECT record FROM site_policies WHERE site = $1`, site); err != nil {
		return nil, err
	}
	return p, nil
}

// PutCurtailStatus implements store.Sites.
func (s *Store) PutCurtailStatus(node string, st *pb.CurtailStatus) error {
	if err := store.ValidNodeID(node); err != nil {
		return fmt.Errorf("put curtail status: %w", err)
	}
	v, err := marshal(st)
	if err != nil {
		return fmt.Errorf("put curtail status of %s: %w", node, err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO curtail_status (node_id, record) VALUES ($1, $2)
		ON CONFLICT (node_id) DO UPDATE SET record = EXCLUDED.record, updated_at = now()`, node, v); err != nil {
		return fmt.Errorf("put curtail status of %s: %w", node, err)
	}
	return nil
}

// CurtailStatuses implements store.Sites.
func (s *Store) CurtailStatuses() (map[string]*pb.CurtailStatus, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT node_id, record FROM curtail_status`)
	if err != nil {
		return nil, fmt.Errorf("curtail statuses: %w", err)
	}
	defer rows.Close()
	out := map[string]*pb.CurtailStatus{}
	for rows.Next() {
		var node string
		var b []byte
		if err := rows.Scan(&node, &b); err != nil {
			return nil, fmt.Errorf("curtail statuses: %w", err)
		}
		st := &pb.CurtailStatus{}
		if err := proto.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("curtail status of %s: %w", node, err)
		}
		out[node] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("curtail statuses: %w", err)
	}
	return out, nil
}
