package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Found is one discovered device: what it says it is, never an ownership claim.
type Found struct {
	// Device has MinerId (see MinerID), Protocol, Address (the API a driver polls: the CGMiner API, or the
	// Proto rig's REST endpoint), WebAddress (the Antminer web CGI, or the Proto rig's REST endpoint), Model,
	// Serial and Mac, as far as they could be read. NodeId and Site are left to the caller. Never modified
	// after the Found is reported.
	Device *pb.Device
	// Firmware is what the device reports as its firmware or software version, "" when unknown.
	Firmware string
	// Hostname is the device's own host name when it reported one.
	Hostname string
	// Notes say what could not be read about an identified device ("no MAC: no Antminer credentials given").
	Notes []string
}

// TargetError is an address that answered but yielded no device: another kind of device (errors.Is
// ErrNotMiner) or a hostile, malformed, oversized, redirecting or stalled reply (ErrHostile). Addresses that
// did not answer at all are not errors: most of a scanned range is empty.
type TargetError struct {
	Addr netip.Addr
	// Port is the port the error is about, 0 when it is about the address as a whole.
	Port int
	// Probe is "cgminer", "web" (Antminer web CGI or Proto rig REST) or "" for the address as a whole.
	Probe string
	Err   error
}

func (e TargetError) Error() string {
	where := e.Addr.String()
	if e.Port != 0 {
		where = netip.AddrPortFrom(e.Addr, uint16(e.Port)).String()
	}
	if e.Probe != "" {
		where += " (" + e.Probe + ")"
	}
	return where + ": " + e.Err.Error()
}

func (e TargetError) Unwrap() error { return e.Err }

// Unknown reports whether the address holds something that is not a miner, as opposed to a hostile reply.
func (e TargetError) Unknown() bool { return errors.Is(e.Err, ErrNotMiner) }

// Progress is how far a scan is.
type Progress struct {
	ScanID string
	// Total is the number of addresses; Probed how many are finished.
	Total, Probed int
	// Found counts devices, Errors addresses that answered without yielding one.
	Found, Errors int
}

func (p Progress) String() string {
	return fmt.Sprintf("scan %s: %d/%d probed, %d found, %d errors", p.ScanID, p.Probed, p.Total, p.Found, p.Errors)
}

// Update is one progress report: the counters and what was found since the previous report. Devices in
// updates are preliminary (an identity seen twice is only resolved in the Result).
type Update struct {
	Progress Progress
	Found    []Found
	Errors   []TargetError
}

// Result is a finished (or cancelled) scan.
type Result struct {
	ScanID            string
	Started, Finished time.Time // on Config.Clock
	Total, Probed     int
	// Found are the devices in address order, one per identity.
	Found []Found
	// Errors are the addresses that answered without yielding a device, in address order.
	Errors []TargetError
	// Canceled is set when the scan stopped before probing every address.
	Canceled bool
}

// Devices returns the discovered devices in address order.
func (r *Result) Devices() []*pb.Device {
	out := make([]*pb.Device, len(r.Found))
	for i, f := range r.Found {
		out[i] = f.Device
	}
	return out
}

// Progress returns the result's final counters.
func (r *Result) Progress() Progress {
	return Progress{ScanID: r.ScanID, Total: r.Total, Probed: r.Probed, Found: len(r.Found), Errors: len(r.Errors)}
}
