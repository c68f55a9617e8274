package automation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/hashfleet/hashfleet/node/curtail"
)

// Policy is a site's node-local automation: rules, schedules and trusted pools, signed by an org command key
// and kept in the node's store so it runs with the WAN down. Its JSON form is what is signed (see SignPolicy).
type Policy struct {
	// Version orders policies: a node installs only a version above the one it has.
	Version uint64 `json:"version"`
	// Org is the org whose key signs the policy; Site the site it is for.
	Org  string `json:"org"`
	Site string `json:"site"`
	// IssuedAt is informational (when the cloud made it).
	IssuedAt     time.Time    `json:"issued_at,omitzero"`
	Rules        Rules        `json:"rules"`
	Schedules    []Schedule   `json:"schedules,omitempty"`
	TrustedPools TrustedPools `json:"trusted_pools,omitzero"`

	compiled []compiledSchedule // parallel to Schedules, filled by Compile
}

// Rules are the per-miner rules.
type Rules struct {
	Overheat     []OverheatRule     `json:"overheat,omitempty"`
	HashrateDrop []HashrateDropRule `json:"hashrate_drop,omitempty"`
	Unreachable  []UnreachableRule  `json:"unreachable,omitempty"`
}

// OverheatRule curtails or stops a miner whose hottest board or chip reaches ThresholdC, and resumes it once
// it has cooled to ThresholdC − HysteresisC.
type OverheatRule struct {
	ID          string  `json:"id"`
	ThresholdC  float64 `json:"threshold_c"`
	HysteresisC float64 `json:"hysteresis_c"`
	// Action is "curtail" (sleep; resumed with uncurtail) or "stop" (stop mining; resumed with start).
	Action string `json:"action"`
	// Miners limits the rule to these miners; empty means every miner.
	Miners []string `json:"miners,omitempty"`
}

// HashrateDropRule reboots a mining miner whose hashrate stays more than DropPct below its own reference for
// Window. The reference is an average of the miner's healthy readings over BaselineWindow (reset when its
// power target changes). A miner is rebooted at most once per MinInterval, and at most MaxConcurrent miners
// of the site reboot at once (counting every rebooting miner, whoever rebooted it). When at least
// SuppressSiteWidePct of the mining miners (and at least 3) are in a drop together, the cause is likely
// common (pool, network, power) and no miner is rebooted: the operator is told once instead.
type HashrateDropRule struct {
	ID      string   `json:"id"`
	DropPct float64  `json:"drop_pct"`
	Window  Duration `json:"window"`
	// BaselineWindow defaults to 1h.
	BaselineWindow      Duration `json:"baseline_window,omitempty"`
	MinInterval         Duration `json:"min_interval"`
	MaxConcurrent       int      `json:"max_concurrent"`
	SuppressSiteWidePct float64  `json:"suppress_site_wide_pct,omitempty"`
	Miners              []string `json:"miners,omitempty"`
}

// UnreachableRule tells the operator (an audited event) about a miner unreachable for After, once per outage.
type UnreachableRule struct {
	ID     string   `json:"id"`
	After  Duration `json:"after"`
	Miners []string `json:"miners,omitempty"`
}

// Schedule curtails the site (or Miners) every day (or on Days) from Start to End, local wall-clock times in
// TimeZone. An End at or before Start ends the next day. A Start or End skipped by a daylight-saving change
// happens when the clocks jump; one that occurs twice happens the first time. When windows of several
// schedules overlap, the one listed first runs.
type Schedule struct {
	ID       string   `json:"id"`
	TimeZone string   `json:"time_zone"`
	Days     []string `json:"days,omitempty"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
	// Exactly one target: TargetKW (draw at most), ShedKW (draw this much less) or Full.
	TargetKW float64  `json:"target_kw,omitempty"`
	ShedKW   float64  `json:"shed_kw,omitempty"`
	Full     bool     `json:"full,omitempty"`
	Mode     string   `json:"mode,omitempty"`
	Miners   []string `json:"miners,omitempty"`
}

// target is the schedule's curtailment target.
func (s Schedule) target() curtail.Target {
	switch {
	case s.Full:
		return curtail.Full()
	case s.ShedKW > 0:
		return curtail.ShedKW(s.ShedKW)
	}
	return curtail.LimitKW(s.TargetKW)
}

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Compile validates the policy and prepares its schedules (time zones loaded). Errors wrap ErrInvalidPolicy
// and name every problem.
func (p *Policy) Compile() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.Version == 0 {
		bad("version must be at least 1")
	}
	if p.Org == "" || p.Site == "" {
		bad("org and site are required")
	}
	seen := map[string]bool{}
	id := func(kind, v string) {
		switch {
		case !ruleID.MatchString(v):
			bad("%s id %q: want 1-64 of a-z 0-9 . _ - (it names the rule in audit records)", kind, v)
		case seen[v]:
			bad("%s id %q used twice", kind, v)
		}
		seen[v] = true
	}
	for _, r := range p.Rules.Overheat {
		id("overheat rule", r.ID)
		if !(r.ThresholdC > 0 && r.ThresholdC <= 150) {
			bad("overheat rule %s: threshold %v °C must be in (0, 150]", r.ID, r.ThresholdC)
		}
		if !(r.HysteresisC >= 0 && r.HysteresisC < r.ThresholdC) {
			bad("overheat rule %s: hysteresis %v °C must be ≥ 0 and below the threshold", r.ID, r.HysteresisC)
		}
		if r.Action != "curtail" && r.Action != "stop" {
			bad("overheat rule %s: action %q: want curtail or stop", r.ID, r.Action)
		}
	}
	for _, r := range p.Rules.HashrateDrop {
		id("hashrate drop rule", r.ID)
		if !(r.DropPct > 0 && r.DropPct < 100) {
			bad("hashrate drop rule %s: drop %v%% must be in (0, 100)", r.ID, r.DropPct)
		}
		if r.Window.D() < time.Minute {
			bad("hashrate drop rule %s: window %s must be at least 1m", r.ID, r.Window.D())
		}
		if r.BaselineWindow != 0 && r.BaselineWindow.D() < r.Window.D() {
			bad("hashrate drop rule %s: baseline window %s must be at least the window %s", r.ID, r.BaselineWindow.D(), r.Window.D())
		}
		if r.MinInterval.D() < 5*time.Minute {
			bad("hashrate drop rule %s: per-miner interval %s must be at least 5m", r.ID, r.MinInterval.D())
		}
		if r.MaxConcurrent < 1 {
			bad("hashrate drop rule %s: max concurrent reboots %d must be at least 1", r.ID, r.MaxConcurrent)
		}
		if !(r.SuppressSiteWidePct >= 0 && r.SuppressSiteWidePct <= 100) {
			bad("hashrate drop rule %s: site-wide suppression %v%% must be in [0, 100]", r.ID, r.SuppressSiteWidePct)
		}
	}
	for _, r := range p.Rules.Unreachable {
		id("unreachable rule", r.ID)
		if r.After.D() < time.Minute {
			bad("unreachable rule %s: after %s must be at least 1m", r.ID, r.After.D())
		}
	}
	p.compiled = make([]compiledSchedule, len(p.Schedules))
	for i, s := range p.Schedules {
		id("schedule", s.ID)
		c, err := compileSchedule(s)
		if err != nil {
			bad("schedule %s: %v", s.ID, err)
		}
		p.compiled[i] = c
		n := 0
		for _, set := range []bool{s.TargetKW > 0, s.ShedKW > 0, s.Full} {
			if set {
				n++
			}
		}
		if n != 1 || math.IsInf(s.TargetKW, 0) || math.IsInf(s.ShedKW, 0) || s.TargetKW < 0 || s.ShedKW < 0 {
			bad("schedule %s: give exactly one of target_kw, shed_kw (positive) or full", s.ID)
		}
		if _, err := curtail.ParseMode(s.Mode); err != nil {
			bad("schedule %s: %v", s.ID, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("policy v%d for site %q: %w: %w", p.Version, p.Site, ErrInvalidPolicy, errors.Join(errs...))
	}
	return nil
}

// compiledOK reports whether Compile has prepared the schedules.
func (p *Policy) compiledOK() bool { return len(p.compiled) == len(p.Schedules) }

// Encode returns the policy's JSON, the bytes that are signed.
func (p Policy) Encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode policy v%d: %w", p.Version, err)
	}
	return b, nil
}

// DecodePolicy reads a policy strictly (unknown fields and trailing data refused: a rule this node does not
// understand must not be silently ignored) and compiles it.
func DecodePolicy(body []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("decode policy: %w: %w", err, ErrMalformedPolicy)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("decode policy: data after the policy object: %w", ErrMalformedPolicy)
	}
	if err := p.Compile(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Replaces reports whether next may replace current (nil: no policy installed): only a newer version does.
func Replaces(current *Policy, next Policy) error {
	if current != nil && next.Version <= current.Version {
		return fmt.Errorf("policy v%d for site %q, installed v%d: %w", next.Version, next.Site, current.Version, ErrStalePolicy)
	}
	return nil
}

// ruleKinds are the metric label values for rules.
const (
	kindOverheat     = "overheat"
	kindHashrateDrop = "hashrate_drop"
	kindUnreachable  = "unreachable"
	kindSchedule     = "schedule"
)

func inList(list []string, id string) bool {
	if len(list) == 0 {
		return true
	}
	for _, v := range list {
		if v == id {
			return true
		}
	}
	return false
}
