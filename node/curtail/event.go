package curtail

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// TargetKind says how an event's target is read.
type TargetKind int

const (
	// TargetLimit: the scope draws at most KW.
	TargetLimit TargetKind = iota + 1
	// TargetShed: the scope draws KW less than it did when the event started (demand-response programs).
	TargetShed
	// TargetFull: every miner in scope is curtailed.
	TargetFull
)

func (k TargetKind) String() string {
	switch k {
	case TargetLimit:
		return "limit"
	case TargetShed:
		return "shed"
	case TargetFull:
		return "full"
	}
	return fmt.Sprintf("TargetKind(%d)", int(k))
}

// Target is what an event asks of the scope's power draw.
type Target struct {
	Kind TargetKind
	// KW is the limit (TargetLimit) or the reduction (TargetShed), in kilowatts. Unused for TargetFull.
	KW float64
}

// LimitKW is a target of drawing at most kw.
func LimitKW(kw float64) Target { return Target{Kind: TargetLimit, KW: kw} }

// ShedKW is a target of drawing kw less than at the event's start.
func ShedKW(kw float64) Target { return Target{Kind: TargetShed, KW: kw} }

// Full is the target of curtailing every miner in scope.
func Full() Target { return Target{Kind: TargetFull} }

func (t Target) String() string {
	switch t.Kind {
	case TargetFull:
		return "full"
	case TargetLimit:
		return fmt.Sprintf("at most %.1f kW", t.KW)
	case TargetShed:
		return fmt.Sprintf("%.1f kW less", t.KW)
	}
	return t.Kind.String()
}

// Scope is the set of miners an event covers.
type Scope struct {
	// MinerIDs names the miners; empty means every miner of the site.
	MinerIDs []string
}

// All reports whether the scope is the whole site.
func (s Scope) All() bool { return len(s.MinerIDs) == 0 }

// set returns the scope as a set, nil for the whole site.
func (s Scope) set() map[string]struct{} {
	if s.All() {
		return nil
	}
	m := make(map[string]struct{}, len(s.MinerIDs))
	for _, id := range s.MinerIDs {
		m[id] = struct{}{}
	}
	return m
}

// Mode says how miners are curtailed.
type Mode int

const (
	// ModeAuto (the zero value): sleep miners that can sleep; power-limit the last miner chosen when that
	// meets the target more closely, and miners that can be power-limited but not put to sleep.
	ModeAuto Mode = iota
	// ModeSleep: only sleep; miners that cannot sleep are not chosen.
	ModeSleep
	// ModePowerLimit: only power targets (each miner down to its minimum, the last one to what the target
	// needs); miners without a power target are not chosen.
	ModePowerLimit
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeSleep:
		return "sleep"
	case ModePowerLimit:
		return "power_limit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads "auto", "sleep" or "power_limit" ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ModeAuto, nil
	case "sleep":
		return ModeSleep, nil
	case "power_limit", "power-limit", "limit":
		return ModePowerLimit, nil
	}
	return 0, fmt.Errorf("mode %q (want auto, sleep or power_limit): %w", s, ErrInvalidEvent)
}

// Order is the order in which miners are chosen for curtailment.
type Order int

const (
	// OrderDefault (the zero value) in an Event means the Config's order; in a Config it means
	// OrderLeastEfficient.
	OrderDefault Order = iota
	// OrderLeastEfficient: highest J/TH first (a miner drawing power without hashing comes first of all).
	OrderLeastEfficient
	// OrderHighestPower: highest draw first (fewest commands for a given reduction).
	OrderHighestPower
	// OrderPriority: miners carrying Config.PriorityTags[0] first, then [1], …, untagged last; least
	// efficient first within each group.
	OrderPriority
)

func (o Order) String() string {
	switch o {
	case OrderDefault:
		return "default"
	case OrderLeastEfficient:
		return "least_efficient"
	case OrderHighestPower:
		return "highest_power"
	case OrderPriority:
		return "priority"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// Event is one curtailment event: a target for a scope, from Start until End or until stopped.
type Event struct {
	// ID names the event; starting an event with the ID of the one in progress updates it.
	ID     string
	Target Target
	Scope  Scope
	// Start is when curtailment begins; zero means at once.
	Start time.Time
	// End is when the event ends by itself and miners are released; zero means until stopped.
	End  time.Time
	Mode Mode
	// Order overrides Config.Order for this event (OrderDefault: the Config's).
	Order Order
	// Source says who started it ("cloud:user:alice", "local:admin", "automation:evening"), for status and logs.
	Source string
}

// Validate reports an event that cannot be run.
func (e Event) Validate() error {
	switch {
	case strings.TrimSpace(e.ID) == "":
		return fmt.Errorf("event without an id: %w", ErrInvalidEvent)
	case len(e.ID) > 200:
		return fmt.Errorf("event id of %d bytes (at most 200): %w", len(e.ID), ErrInvalidEvent)
	}
	switch e.Target.Kind {
	case TargetFull:
	case TargetLimit:
		if !(e.Target.KW >= 0) || math.IsInf(e.Target.KW, 0) {
			return fmt.Errorf("event %s: limit %v kW must be a number ≥ 0: %w", e.ID, e.Target.KW, ErrInvalidEvent)
		}
	case TargetShed:
		if !(e.Target.KW > 0) || math.IsInf(e.Target.KW, 0) {
			return fmt.Errorf("event %s: reduction %v kW must be a positive number: %w", e.ID, e.Target.KW, ErrInvalidEvent)
		}
	default:
		return fmt.Errorf("event %s: no target (limit, shed or full): %w", e.ID, ErrInvalidEvent)
	}
	if e.Mode < ModeAuto || e.Mode > ModePowerLimit {
		return fmt.Errorf("event %s: %v: %w", e.ID, e.Mode, ErrInvalidEvent)
	}
	if e.Order < OrderDefault || e.Order > OrderPriority {
		return fmt.Errorf("event %s: %v: %w", e.ID, e.Order, ErrInvalidEvent)
	}
	if !e.End.IsZero() && !e.Start.IsZero() && !e.End.After(e.Start) {
		return fmt.Errorf("event %s: ends %s, not after its start %s: %w", e.ID,
			e.End.UTC().Format(time.RFC3339), e.Start.UTC().Format(time.RFC3339), ErrInvalidEvent)
	}
	for _, id := range e.Scope.MinerIDs {
		if id == "" {
			return fmt.Errorf("event %s: empty miner id in scope: %w", e.ID, ErrInvalidEvent)
		}
	}
	return nil
}

// sameRun reports whether two events with one id ask for the same thing (a re-sent start is a no-op).
func (e Event) sameRun(o Event) bool {
	if e.ID != o.ID || e.Target != o.Target || e.Mode != o.Mode || e.Order != o.Order ||
		!e.Start.Equal(o.Start) || !e.End.Equal(o.End) || len(e.Scope.MinerIDs) != len(o.Scope.MinerIDs) {
		return false
	}
	for i := range e.Scope.MinerIDs {
		if e.Scope.MinerIDs[i] != o.Scope.MinerIDs[i] {
			return false
		}
	}
	return true
}

func cloneEvent(e Event) Event {
	e.Scope.MinerIDs = append([]string(nil), e.Scope.MinerIDs...)
	return e
}
