package miner

import (
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Rules are the thresholds of the miner state machine (see Config for their meaning and defaults).
type Rules struct {
	FailureThreshold int
	RebootTimeout    time.Duration
	MinRebootTime    time.Duration
}

// Machine is the state of one miner as the node believes it, plus what the next decision needs.
// The zero value is a miner never polled (state UNSPECIFIED).
type Machine struct {
	State pb.MinerState
	// Since is when State was entered.
	Since time.Time
	// Failures counts consecutive failed polls.
	Failures int
	// RebootAt is when the reboot command succeeded (REBOOTING only).
	RebootAt time.Time
	// UptimeAtReboot is the uptime of the last good poll before the reboot; an answer with a lower uptime
	// proves the miner went down and came back.
	UptimeAtReboot int64
	// LastUptime is the uptime of the last good poll, in seconds.
	LastUptime int64
	// WentDown records a failed poll since the reboot command (REBOOTING only): the miner really went down,
	// so its next answer means it is back.
	WentDown bool
}

// ObservationKind says what happened.
type ObservationKind int

const (
	// PollSucceeded: the driver read a sample.
	PollSucceeded ObservationKind = iota + 1
	// PollFailed: the poll failed (unreachable, timeout, malformed reply, no driver).
	PollFailed
	// CommandSucceeded: a command finished successfully on the miner.
	CommandSucceeded
)

// Observation is one input to the state machine.
type Observation struct {
	Kind ObservationKind
	// Reported is the state the driver read (PollSucceeded): MINING, STOPPED, CURTAILED or ONLINE.
	Reported pb.MinerState
	// UptimeS is the uptime the miner reported (PollSucceeded), 0 when unknown.
	UptimeS int64
	// Action is the command that succeeded (CommandSucceeded).
	Action pb.Action
	// Err is the poll error (PollFailed), for the transition reason.
	Err error
}

// Transition describes a state change; From == To means none.
type Transition struct {
	From, To pb.MinerState
	Reason   string
}

// Changed reports whether the state changed.
func (t Transition) Changed() bool { return t.From != t.To }

// Next is the state machine: given the current machine, an observation and the time, the next machine and the
// transition (if any). It is pure.
//
//	any ──poll ok──▶ reported state (MINING / STOPPED / CURTAILED / ONLINE)
//	any ──FailureThreshold failed polls in a row──▶ UNREACHABLE
//	any ──reboot succeeded──▶ REBOOTING
//	REBOOTING ──poll ok after it went down, uptime reset or MinRebootTime passed──▶ reported state
//	REBOOTING ──poll ok, too early, never went down and no uptime reset──▶ REBOOTING
//	REBOOTING ──poll failed before RebootTimeout──▶ REBOOTING
//	REBOOTING ──poll failed at/after RebootTimeout──▶ UNREACHABLE
//	any ──stop / curtail succeeded──▶ STOPPED / CURTAILED
//	any ──start / uncurtail succeeded──▶ ONLINE (the next poll tells whether it hashes)
func (r Rules) Next(m Machine, o Observation, now time.Time) (Machine, Transition) {
	from := m.State
	n := m
	reason := ""
	switch o.Kind {
	case PollSucceeded:
		n.Failures = 0
		reported := o.Reported
		switch reported {
		case pb.MinerState_MINER_STATE_UNSPECIFIED, pb.MinerState_MINER_STATE_UNREACHABLE, pb.MinerState_MINER_STATE_REBOOTING:
			reported = pb.MinerState_MINER_STATE_ONLINE
		}
		if m.State == pb.MinerState_MINER_STATE_REBOOTING {
			// A miner that did not restart reports at least the uptime it had plus the time since the
			// command; one that restarted reports less (1 s granularity tolerated). Comparing with the
			// uptime alone misses a reboot whose first good poll comes after the new uptime has passed
			// the old one (a miner that had been up only briefly).
			elapsed := int64(now.Sub(m.RebootAt) / time.Second)
			uptimeReset := m.UptimeAtReboot > 0 && o.UptimeS+1 < m.UptimeAtReboot+elapsed
			waited := now.Sub(m.RebootAt) >= r.MinRebootTime
			if !uptimeReset && !m.WentDown && !waited {
				n.LastUptime = o.UptimeS
				return n, Transition{From: from, To: from}
			}
			n.RebootAt, n.UptimeAtReboot, n.WentDown = time.Time{}, 0, false
			if uptimeReset || m.WentDown {
				reason = fmt.Sprintf("back after reboot (uptime %ds)", o.UptimeS)
			} else {
				reason = fmt.Sprintf("answering %s after reboot", now.Sub(m.RebootAt).Round(time.Second))
			}
		} else if m.State == pb.MinerState_MINER_STATE_UNREACHABLE {
			reason = "reachable again"
		} else {
			reason = "poll"
		}
		n.State = reported
		n.LastUptime = o.UptimeS
	case PollFailed:
		n.Failures++
		if m.State == pb.MinerState_MINER_STATE_REBOOTING {
			n.WentDown = true
			if since := now.Sub(m.RebootAt); since >= r.RebootTimeout {
				n.State = pb.MinerState_MINER_STATE_UNREACHABLE
				n.RebootAt, n.UptimeAtReboot, n.WentDown = time.Time{}, 0, false
				reason = fmt.Sprintf("not back %s after reboot: %v", since.Round(time.Second), o.Err)
			}
			break
		}
		if n.Failures >= r.FailureThreshold {
			n.State = pb.MinerState_MINER_STATE_UNREACHABLE
			reason = fmt.Sprintf("%d consecutive failed polls: %v", n.Failures, o.Err)
		}
	case CommandSucceeded:
		switch o.Action {
		case pb.Action_ACTION_REBOOT:
			n.State = pb.MinerState_MINER_STATE_REBOOTING
			n.RebootAt = now
			n.UptimeAtReboot = m.LastUptime
			n.Failures, n.WentDown = 0, false
			reason = "reboot command"
			if from == n.State { // a second reboot restarts the clock
				return n, Transition{From: from, To: from}
			}
		case pb.Action_ACTION_STOP_MINING:
			n.State, reason = pb.MinerState_MINER_STATE_STOPPED, "stop command"
		case pb.Action_ACTION_CURTAIL:
			n.State, reason = pb.MinerState_MINER_STATE_CURTAILED, "curtail command"
		case pb.Action_ACTION_START_MINING, pb.Action_ACTION_UNCURTAIL:
			n.State, reason = pb.MinerState_MINER_STATE_ONLINE, o.Action.String()+" command"
		}
	}
	if n.State != from {
		n.Since = now
		return n, Transition{From: from, To: n.State, Reason: reason}
	}
	return n, Transition{From: from, To: from}
}
