package discovery

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// StartScan asks the DiscoveryActor to start a scan. It answers *ScanStarted at once, or an error: the
// target errors of ParseTargets, ErrBadRequest, ErrScanExists or ErrBusy. Progress and the result arrive as
// *ScanProgress and *ScanFinished at Subscriber and at Env.Listener.
type StartScan struct {
	Request
	// Subscriber, when not nil, receives this scan's *ScanProgress and *ScanFinished.
	Subscriber *actor.PID
}

// ScanStarted answers StartScan.
type ScanStarted struct {
	ScanID string
	// Total is the number of distinct addresses; Targets the merged ranges, as ParseTargets read them.
	Total   int
	Targets string
}

// CancelScan asks the DiscoveryActor to stop a running scan. It answers the scan's *ScanStatus (state
// ScanCanceling until the probes in flight end, then ScanCanceled) or ErrUnknownScan. Cancelling a finished
// scan changes nothing.
type CancelScan struct{ ScanID string }

// StatusRequest asks for one scan's *ScanStatus; an empty ScanID means the most recently started scan.
// Unknown scans are ErrUnknownScan.
type StatusRequest struct{ ScanID string }

// ListScans asks for every remembered scan, oldest first, answered with *ScanList (without devices and
// errors: ask StatusRequest for those).
type ListScans struct{}

// ScanList answers ListScans.
type ScanList struct{ Scans []ScanStatus }

// ScanState is where a scan is.
type ScanState int

const (
	// ScanRunning: probing.
	ScanRunning ScanState = iota + 1
	// ScanCanceling: cancelled, probes in flight still ending.
	ScanCanceling
	// ScanDone: every address probed.
	ScanDone
	// ScanCanceled: stopped before every address was probed; the devices found so far are kept.
	ScanCanceled
	// ScanFailed: the scan stopped on an internal error (ErrScanPanic); the devices found so far are kept.
	ScanFailed
)

func (s ScanState) String() string {
	switch s {
	case ScanRunning:
		return "running"
	case ScanCanceling:
		return "canceling"
	case ScanDone:
		return "done"
	case ScanCanceled:
		return "canceled"
	case ScanFailed:
		return "failed"
	}
	return "unknown"
}

// Finished reports whether the scan has ended.
func (s ScanState) Finished() bool { return s == ScanDone || s == ScanCanceled || s == ScanFailed }

// ScanStatus is a copy of one scan's state. Found devices are *discovered*, never owned: a device becomes a
// node's only when the operator confirms pairing. While the scan runs, Found is preliminary (an identity
// answering at two addresses is only resolved when it ends).
type ScanStatus struct {
	ScanID   string
	State    ScanState
	Progress Progress
	Targets  string
	Found    []Found
	Errors   []TargetError
	// Started and Finished are on Config.Clock; Finished is zero while running.
	Started, Finished time.Time
	// Err says why a ScanFailed scan failed.
	Err string
}

// ScanProgress is sent to the listeners while a scan runs: the counters and the devices and errors found
// since the previous ScanProgress.
type ScanProgress struct {
	ScanID   string
	Progress Progress
	Found    []Found
	Errors   []TargetError
}

// ScanFinished is sent to the listeners when a scan ends, with its final status.
type ScanFinished struct{ Status ScanStatus }

// Internal messages. Each carries the actor incarnation that started the scan, so a late message from a
// scan of a previous incarnation (before a restart) is dropped.
type scanUpdate struct {
	inc uint64
	id  string
	u   Update
}

type scanDone struct {
	inc uint64
	id  string
	res *Result
	err error
}
