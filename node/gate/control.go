package gate

import (
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// Node-control commands are signed commands that are not about miners the node owns: a discovery scan and
// the pairing of discovered devices. They pass the same authenticity checks (node, signature, key, epoch,
// seq) and consume the seq like any command, but skip the ownership check: a pairing names devices precisely
// because the node does not own them yet, and a scan names none. Neither claims ownership: a scan reports
// what it finds, a pairing reports per device whether the node could reach and log in to it, and only the
// cloud, hearing SUCCEEDED, records the node as the owner.

// MaxPairingDevices bounds the devices of one pairing command.
const MaxPairingDevices = 10_000

// ScanResultID is the id a discovery command's single result is reported under: "scan/<scan id>".
func ScanResultID(scanID string) string { return "scan/" + scanID }

// isControl reports whether p is a node-control payload.
func isControl(p *pb.CommandPayload) bool {
	return p.GetDiscovery() != nil || p.GetPairing() != nil || isSiteControl(p)
}

// actionOf names a payload's action for logs.
func actionOf(p *pb.CommandPayload) string {
	switch {
	case p.GetDiscovery() != nil:
		return "DISCOVERY"
	case p.GetPairing() != nil:
		return "PAIRING"
	case p.GetSitePolicy() != nil:
		return "SITE_POLICY"
	case p.GetCurtail() != nil:
		return "CURTAIL"
	}
	return p.GetSpec().GetAction().String()
}

// decideControl is decide's verdict on an authentic, fresh node-control command (v has consume set).
func decideControl(v verdict, p *pb.CommandPayload, supported bool) verdict {
	ids, err := controlIDs(p)
	switch {
	case !supported:
		v.code, v.msg = pb.ResultCode_RESULT_CODE_UNSUPPORTED, "this node does not run "+strings.ToLower(actionOf(p))+" commands"
		v.miners = ids
	case err != nil:
		v.code, v.msg = pb.ResultCode_RESULT_CODE_FAILED, err.Error()
		v.miners = ids
	default:
		v.code, v.dispatch, v.miners = pb.ResultCode_RESULT_CODE_RUNNING, true, ids
	}
	return v
}

// controlIDs lists what a control command's results are reported under, and checks its shape.
func controlIDs(p *pb.CommandPayload) ([]string, error) {
	n := 0
	for _, set := range []bool{p.GetDiscovery() != nil, p.GetPairing() != nil, p.GetSitePolicy() != nil, p.GetCurtail() != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("payload holds more than one node-control request")
	}
	if len(p.GetMinerIds()) > 0 || p.GetSpec() != nil {
		return nil, fmt.Errorf("a node-control payload names no miners and no action")
	}
	if isSiteControl(p) {
		id, err := siteControlID(p)
		if err != nil {
			return nil, err
		}
		return []string{id}, nil
	}
	if d := p.GetDiscovery(); d != nil {
		if err := sealing.ValidateID("scan id", d.GetScanId()); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		return []string{ScanResultID(d.GetScanId())}, nil
	}
	devs := p.GetPairing().GetDevices()
	if len(devs) == 0 || len(devs) > MaxPairingDevices {
		return nil, fmt.Errorf("a pairing names 1 to %d devices, got %d", MaxPairingDevices, len(devs))
	}
	ids := make([]string, 0, len(devs))
	seen := make(map[string]bool, len(devs))
	for _, d := range devs {
		id := d.GetMinerId()
		if err := sealing.ValidateID("device id", id); err != nil {
			return nil, fmt.Errorf("pairing: %w", err)
		}
		if seen[id] {
			return nil, fmt.Errorf("pairing names %q twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// resultIDs lists what a command's results are reported under: its miners, or a control command's ids.
func resultIDs(p *pb.CommandPayload) []string {
	if isControl(p) {
		ids, _ := controlIDs(p)
		return ids
	}
	return dedupe(p.GetMinerIds())
}
