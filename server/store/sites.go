package store

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Site records: the signed automation policy of each site, as it was sent to the site's nodes, and the
// latest curtailment status each node reported (EVENT_KIND_CURTAIL).

const (
	pSitePolicy  = "sitepol/"
	pCurtailStat = "curtstat/"
)

// Sites persists site policies and curtailment statuses.
type Sites interface {
	// PutSitePolicy replaces a site's signed policy.
	PutSitePolicy(site string, p *pb.SitePolicy) error
	// SitePolicy returns a site's signed policy; ErrNotFound when it has none.
	SitePolicy(site string) (*pb.SitePolicy, error)
	// PutCurtailStatus replaces a node's latest curtailment status.
	PutCurtailStatus(node string, st *pb.CurtailStatus) error
	// CurtailStatuses returns every node's latest curtailment status, by node id.
	CurtailStatuses() (map[string]*pb.CurtailStatus, error)
}

var _ Sites = (*Badger)(nil)

func validSite(site string) error {
	if site == "" || len(site) > 128 || strings.ContainsAny(site, "/\x00") {
		return fmt.Errorf("site %q: 1 to 128 bytes, no '/': %w", site, ErrInvalidKey)
	}
	return nil
}

// PutSitePolicy implements Sites.
func (s *Badger) PutSitePolicy(site string, p *pb.SitePolicy) error {
	if err := validSite(site); err != nil {
		return err
	}
	return s.put(key(pSitePolicy, site), p)
}

// SitePolicy implements Sites.
func (s *Badger) SitePolicy(site string) (*pb.SitePolicy, error) {
	if err := validSite(site); err != nil {
		return nil, err
	}
	p := &pb.SitePolicy{}
	if err := s.get(key(pSitePolicy, site), p); err != nil {
		return nil, err
	}
	return p, nil
}

// PutCurtailStatus implements Sites.
func (s *Badger) PutCurtailStatus(node string, st *pb.CurtailStatus) error {
	if err := ValidNodeID(node); err != nil {
		return err
	}
	return s.put(key(pCurtailStat, node), st)
}

// CurtailStatuses implements Sites.
func (s *Badger) CurtailStatuses() (map[string]*pb.CurtailStatus, error) {
	out := map[string]*pb.CurtailStatus{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pCurtailStat), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			node := strings.TrimPrefix(string(it.Item().Key()), pCurtailStat)
			st := &pb.CurtailStatus{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, st) }); err != nil {
				return fmt.Errorf("curtail status of %s: %w", node, err)
			}
			out[node] = st
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
