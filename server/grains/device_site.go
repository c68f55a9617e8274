package grains

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// A device's site is its owning node's site: the site of the enrollment code the node enrolled with (split
// mode's NodeRecord.site). The Org stamps it on every device it registers to a node, before persisting, so
// the device records, the nodes' ownership maps, the FleetView's site filter and tree and the history's site
// groups all see it. A device that already names a site keeps it (combined mode's device file, a pairing
// that named one). Without Config.NodeRecord (combined mode) nothing is stamped.

// siteOfNode returns node's enrollment site ("" when unknown, unenrolled or without a site).
func (o *Org) siteOfNode(node string, cache map[string]string) string {
	if o.cfg.NodeRecord == nil || node == "" {
		return ""
	}
	if s, ok := cache[node]; ok {
		return s
	}
	rec, err := o.cfg.NodeRecord(node)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		o.log.Warn("device site: node record", slog.String("node", node), slog.Any("err", err))
	}
	s := rec.GetSite()
	cache[node] = s
	return s
}

// stampSites sets the site of every device without one to its node's site and returns how many it set. The
// devices are modified in place: callers pass the records they are about to persist.
func (o *Org) stampSites(devs []*pb.Device) int {
	if o.cfg.NodeRecord == nil {
		return 0
	}
	cache := map[string]string{}
	n := 0
	for _, d := range devs {
		if d == nil || d.GetSite() != "" {
			continue
		}
		if s := o.siteOfNode(d.GetNodeId(), cache); s != "" {
			d.Site = s
			n++
		}
	}
	return n
}

// stampLoadedSites gives devices persisted without a site (paired before sites flowed to devices) their
// node's site, and persists those it changed.
func (o *Org) stampLoadedSites(devs []*pb.Device) error {
	if o.cfg.NodeRecord == nil {
		return nil
	}
	var missing []*pb.Device
	for _, d := range devs {
		if d.GetSite() == "" {
			missing = append(missing, d)
		}
	}
	if o.stampSites(missing) == 0 {
		return nil
	}
	var changed []*pb.Device
	for _, d := range missing {
		if d.GetSite() != "" {
			changed = append(changed, d)
		}
	}
	if err := o.cfg.Store.Apply(store.Batch{Devices: changed}); err != nil {
		return fmt.Errorf("persist the sites of %d devices: %w", len(changed), err)
	}
	o.log.Info("devices given their node's site", slog.Int("devices", len(changed)))
	return nil
}
