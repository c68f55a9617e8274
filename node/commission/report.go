package commission

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/discovery"
)

// Pure conversions from the DiscoveryActor's reports to EVENT_KIND_SCAN events.

// progressReports turns one progress report into scan reports: the counters, and what was found since the
// previous report, split so no report carries more than maxDevices devices or maxErrors errors.
func progressReports(p *discovery.ScanProgress, started int64, maxDevices, maxErrors int) []*pb.ScanReport {
	return split(&pb.ScanReport{ScanId: p.ScanID, State: discovery.ScanRunning.String(), StartedAtUnixMs: started},
		p.Progress, p.Found, p.Errors, maxDevices, maxErrors)
}

// finalReports turns a finished scan into scan reports carrying its final state and every device it found
// (the final list resolves identities seen at two addresses), split as progressReports does. Every part
// carries the final state, so whichever arrives last leaves the cloud's record final.
func finalReports(s *discovery.ScanStatus, maxDevices, maxErrors int) []*pb.ScanReport {
	base := &pb.ScanReport{ScanId: s.ScanID, State: s.State.String(), StartedAtUnixMs: unixMs(s.Started),
		FinishedAtUnixMs: unixMs(s.Finished), Message: s.Err}
	// Errors were reported as they came; the final parts repeat none of them.
	return split(base, s.Progress, s.Found, nil, maxDevices, maxErrors)
}

func split(base *pb.ScanReport, p discovery.Progress, found []discovery.Found, errs []discovery.TargetError, maxDevices, maxErrors int) []*pb.ScanReport {
	base.Total, base.Probed = int32(p.Total), int32(p.Probed)
	base.FoundCount, base.ErrorCount = int32(p.Found), int32(p.Errors)
	var out []*pb.ScanReport
	for first := true; first || len(found) > 0; first = false {
		r := cloneReport(base)
		n := min(len(found), maxDevices)
		for _, f := range found[:n] {
			r.Found = append(r.Found, deviceOf(f))
		}
		found = found[n:]
		if first {
			for _, e := range errs[:min(len(errs), maxErrors)] {
				r.Errors = append(r.Errors, e.Error())
			}
			if len(errs) > maxErrors {
				r.Errors = append(r.Errors, fmt.Sprintf("… and %d more in this interval", len(errs)-maxErrors))
			}
		}
		out = append(out, r)
	}
	return out
}

func cloneReport(r *pb.ScanReport) *pb.ScanReport {
	return &pb.ScanReport{ScanId: r.ScanId, State: r.State, Total: r.Total, Probed: r.Probed, FoundCount: r.FoundCount,
		ErrorCount: r.ErrorCount, StartedAtUnixMs: r.StartedAtUnixMs, FinishedAtUnixMs: r.FinishedAtUnixMs, Message: r.Message}
}

// deviceOf copies a found device (Found.Device is shared and never modified).
func deviceOf(f discovery.Found) *pb.Device {
	d := f.Device
	return &pb.Device{MinerId: d.GetMinerId(), Address: d.GetAddress(), Protocol: d.GetProtocol(), Model: d.GetModel(),
		Serial: d.GetSerial(), Mac: d.GetMac(), WebAddress: d.GetWebAddress()}
}
