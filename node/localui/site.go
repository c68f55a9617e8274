package localui

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Site is the node as the local UI sees it. The node implements it over its actors (site supervisor for
// miners, uplink for the link, gate/local command log for commands); tests use an in-memory twin
// (localuitest.Site). Every method may be called concurrently and must honour ctx.
type Site interface {
	// Miners returns every miner this node owns, sorted by id.
	Miners(ctx context.Context) ([]MinerView, error)
	// Miner returns one miner; an error wrapping ErrUnknownMiner when the node does not own it.
	Miner(ctx context.Context, id string) (MinerView, error)
	// Link reports the cloud link. It does not fail: a node without a cloud link says Configured=false.
	Link(ctx context.Context) LinkView
	// Submit runs a local command and returns its command id. Before it returns, the node has stamped the
	// command (local_origin, the idempotency key, an HLC timestamp, its lease epoch, the actor, the resolved
	// miner ids when req.All) and persisted it in the local command log; it then runs it. It must be
	// idempotent on req.IdempotencyKey: the same key with the same request returns the first command's id and
	// runs nothing; the same key with a different request fails with ErrIdempotencyKeyReused. A command the
	// node refuses as a whole (self-fenced, not the lease holder) fails with an error wrapping ErrRefused.
	Submit(ctx context.Context, req LocalCommandRequest) (commandID string, err error)
	// Commands returns the newest limit local commands, newest first, with their results so far.
	Commands(ctx context.Context, limit int) ([]CommandView, error)
	// Curtailment starts (curtail every miner) or stops (uncurtail every miner) site curtailment, as a
	// local command with the same guarantees as Submit, and returns its command id.
	Curtailment(ctx context.Context, req CurtailmentRequest) (commandID string, err error)
}

// MinerView is one miner's live state. Every string in it may come from the miner and is escaped on output.
type MinerView struct {
	ID       string `json:"id"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Address  string `json:"address,omitempty"`
	// State is one of StateNames ("mining", "stopped", "curtailed", "rebooting", "online", "unreachable",
	// "unknown").
	State      string    `json:"state"`
	StateSince time.Time `json:"state_since,omitzero"`
	// HashrateTHs is the latest (5 s) hashrate, HashrateAvgTHs the miner's average.
	HashrateTHs    float64 `json:"hashrate_ths"`
	HashrateAvgTHs float64 `json:"hashrate_avg_ths"`
	// TempMaxC is the hottest board or chip temperature.
	TempMaxC     float64     `json:"temp_max_c"`
	PowerW       float64     `json:"power_w"`
	PowerTargetW float64     `json:"power_target_w,omitempty"`
	FansRPM      []int32     `json:"fans_rpm,omitempty"`
	UptimeS      int64       `json:"uptime_s"`
	WorkMode     string      `json:"work_mode,omitempty"`
	Boards       []BoardView `json:"boards,omitempty"`
	Pools        []PoolView  `json:"pools,omitempty"`
	// Errors are what the miner itself reports; Error is the node's last poll or command error.
	Errors     []string  `json:"errors,omitempty"`
	Error      string    `json:"error,omitempty"`
	LastPollAt time.Time `json:"last_poll_at,omitzero"`
}

// ErrorText is the node's error and the miner's own errors, in one line.
func (m MinerView) ErrorText() string {
	return strings.TrimSpace(strings.Join(append([]string{m.Error}, m.Errors...), " "))
}

// BoardView is one hash board.
type BoardView struct {
	Index       int32   `json:"index"`
	TempC       float64 `json:"temp_c"`
	ChipTempC   float64 `json:"chip_temp_c"`
	HashrateTHs float64 `json:"hashrate_ths"`
	Chips       int32   `json:"chips"`
}

// PoolView is one configured pool (never its password).
type PoolView struct {
	URL    string `json:"url"`
	User   string `json:"user"`
	Status string `json:"status,omitempty"`
	Active bool   `json:"active"`
}

// LinkView is the node's link to the cloud, for the banner.
type LinkView struct {
	// Configured is false for a node with no cloud link at all (standalone); the banner then says so.
	Configured bool `json:"configured"`
	// Up: the link to the cloud is established. Down means local-degraded mode.
	Up bool `json:"up"`
	// Since is when the link last went up or down (zero: unknown).
	Since time.Time `json:"since,omitzero"`
	// LastError is why the link last went down or failed to come up.
	LastError string `json:"last_error,omitempty"`
	// Pair is the node's warm-standby pair and lease; nil for a node in no pair.
	Pair *PairView `json:"pair,omitempty"`
}

// PairView is the node's warm-standby pair and lease, for the status panel.
type PairView struct {
	PairID string `json:"pair_id"`
	Peer   string `json:"peer,omitempty"`
	// PeerState is the partner in gossip: alive, suspect, dead, left, or "" never seen.
	PeerState string `json:"peer_state,omitempty"`
	Holder    string `json:"holder,omitempty"`
	Epoch     uint64 `json:"epoch"`
	// Mode is this node's write mode: standby, lease, fenced, local_hold, local_promoted.
	Mode string `json:"mode"`
	// WritesUntil is when this node must stop writing (zero: it may not write now).
	WritesUntil time.Time `json:"writes_until,omitzero"`
}

// LocalCommandRequest is what the operator asked for; the node turns it into a pb.LocalCommand.
type LocalCommandRequest struct {
	// MinerIDs are the miners to act on, without duplicates; empty when All.
	MinerIDs []string
	// All: every miner this node owns (resolved by the node at submission).
	All bool
	// Action is one of LocalActions.
	Action pb.Action
	// PowerTargetW is the target for ACTION_SET_POWER_TARGET, in watts; zero otherwise.
	PowerTargetW float64
	// IdempotencyKey names this request: the same key submitted twice runs once. From the form (a fresh key
	// per page render, so a double click or a re-post runs once) or the API caller.
	IdempotencyKey string
	// Actor is who asked: "local:<user>".
	Actor string
	// ClientAddr is the address the request came from, for the node's log.
	ClientAddr string
}

// CurtailmentRequest starts or stops site curtailment.
type CurtailmentRequest struct {
	// Start: curtail the site; false: end curtailment.
	Start          bool
	IdempotencyKey string
	Actor          string
	ClientAddr     string
}

// CommandView is one local command and its results.
type CommandView struct {
	ID             string   `json:"id"`
	IdempotencyKey string   `json:"idempotency_key"`
	Actor          string   `json:"actor"`
	Action         string   `json:"action"` // ActionName
	PowerTargetW   float64  `json:"power_target_w,omitempty"`
	MinerIDs       []string `json:"miner_ids"`
	// IssuedAt is the wall part of the command's HLC timestamp; HLC is the whole of it, formatted.
	IssuedAt    time.Time      `json:"issued_at,omitzero"`
	HLC         string         `json:"hlc"`
	LeaseEpoch  uint64         `json:"lease_epoch"`
	LocalOrigin bool           `json:"local_origin"`
	Results     []ResultView   `json:"results,omitempty"`
	Summary     CommandSummary `json:"summary"`
}

// ResultView is one miner's result of a command.
type ResultView struct {
	MinerID    string    `json:"miner_id"`
	Code       string    `json:"code"` // "succeeded", "failed", "timeout", ...
	Message    string    `json:"message,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// CommandSummary counts a command's miners by outcome.
type CommandSummary struct {
	Miners    int `json:"miners"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Pending   int `json:"pending"`
}

// Status is "pending", "running", "succeeded", "failed" or "partial".
func (s CommandSummary) Status() string {
	switch {
	case s.Miners == 0:
		return "pending"
	case s.Pending == s.Miners:
		return "pending"
	case s.Pending > 0:
		return "running"
	case s.Failed == 0:
		return "succeeded"
	case s.Succeeded == 0:
		return "failed"
	default:
		return "partial"
	}
}

// Summarize fills c.Summary from c.MinerIDs and c.Results.
func (c *CommandView) Summarize() {
	s := CommandSummary{Miners: len(c.MinerIDs)}
	done := 0
	for _, r := range c.Results {
		switch r.Code {
		case "pending", "running", "unspecified", "":
			continue
		case "succeeded", "duplicate":
			s.Succeeded++
		default:
			s.Failed++
		}
		done++
	}
	s.Pending = max(s.Miners-done, 0)
	c.Summary = s
}

// Actions the local UI offers, by form/API name.
var localActions = map[string]pb.Action{
	"reboot":           pb.Action_ACTION_REBOOT,
	"start":            pb.Action_ACTION_START_MINING,
	"stop":             pb.Action_ACTION_STOP_MINING,
	"set_power_target": pb.Action_ACTION_SET_POWER_TARGET,
	"curtail":          pb.Action_ACTION_CURTAIL,
	"uncurtail":        pb.Action_ACTION_UNCURTAIL,
}

// LocalActions are the form/API names of the actions the local UI offers, sorted.
func LocalActions() []string {
	names := make([]string, 0, len(localActions))
	for n := range localActions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseAction maps a form/API action name to its pb.Action; an error wrapping ErrInvalidRequest for any
// other name.
func ParseAction(name string) (pb.Action, error) {
	if a, ok := localActions[name]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("unknown action %q (want one of %s): %w", name, strings.Join(LocalActions(), ", "), ErrInvalidRequest)
}

// ActionName is the form/API name of a (pb.Action); other actions get their lower-case pb name.
func ActionName(a pb.Action) string {
	for n, x := range localActions {
		if x == a {
			return n
		}
	}
	return strings.ToLower(strings.TrimPrefix(a.String(), "ACTION_"))
}

// Power target bounds, in watts: below a real miner's idle draw or above the largest hydro units is a typo.
const (
	MinPowerTargetW = 100
	MaxPowerTargetW = 20000
)

// Request bounds.
const (
	// MaxMinersPerCommand bounds the miner ids one request names.
	MaxMinersPerCommand = 50000
	// MaxIDLength bounds a miner id and an idempotency key.
	MaxIDLength = 128
)

// Validate checks a request as the UI refuses it before the Site sees it (errors wrap ErrInvalidRequest).
func (r LocalCommandRequest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidRequest)
	}
	if _, ok := localActions[ActionName(r.Action)]; !ok || r.Action == pb.Action_ACTION_UNSPECIFIED {
		return bad("action %s is not one the local UI offers", r.Action)
	}
	switch {
	case r.All && len(r.MinerIDs) > 0:
		return bad("a command names either all miners or a list, not both")
	case !r.All && len(r.MinerIDs) == 0:
		return bad("select at least one miner, or all miners")
	case len(r.MinerIDs) > MaxMinersPerCommand:
		return bad("a command may name at most %d miners (this one names %d)", MaxMinersPerCommand, len(r.MinerIDs))
	}
	seen := make(map[string]bool, len(r.MinerIDs))
	for _, id := range r.MinerIDs {
		if err := checkToken(id); err != nil {
			return bad("miner id %q: %v", truncate(id, 40), err)
		}
		if seen[id] {
			return bad("miner %q is named twice", id)
		}
		seen[id] = true
	}
	if r.Action == pb.Action_ACTION_SET_POWER_TARGET {
		if math.IsNaN(r.PowerTargetW) || r.PowerTargetW < MinPowerTargetW || r.PowerTargetW > MaxPowerTargetW {
			return bad("power target must be between %d and %d W", MinPowerTargetW, MaxPowerTargetW)
		}
	} else if r.PowerTargetW != 0 {
		return bad("a power target goes only with set_power_target")
	}
	if err := checkToken(r.IdempotencyKey); err != nil {
		return bad("idempotency key: %v", err)
	}
	return nil
}

// Spec is the CommandSpec the node stamps into its pb.LocalCommand.
func (r LocalCommandRequest) Spec() *pb.CommandSpec {
	s := &pb.CommandSpec{Action: r.Action}
	if r.Action == pb.Action_ACTION_SET_POWER_TARGET {
		s.PowerTargetW = r.PowerTargetW
	}
	return s
}

// Same reports whether two requests ask for the same thing (for idempotency: actor and address aside).
func (r LocalCommandRequest) Same(o LocalCommandRequest) bool {
	return r.All == o.All && r.Action == o.Action && r.PowerTargetW == o.PowerTargetW &&
		r.IdempotencyKey == o.IdempotencyKey && slices.Equal(r.MinerIDs, o.MinerIDs)
}

// AsCommand is the request a CurtailmentRequest amounts to for now: curtail or uncurtail every miner.
func (c CurtailmentRequest) AsCommand() LocalCommandRequest {
	a := pb.Action_ACTION_UNCURTAIL
	if c.Start {
		a = pb.Action_ACTION_CURTAIL
	}
	return LocalCommandRequest{All: true, Action: a, IdempotencyKey: c.IdempotencyKey, Actor: c.Actor, ClientAddr: c.ClientAddr}
}

// checkToken accepts 1..MaxIDLength printable, non-space characters.
func checkToken(s string) error {
	if s == "" || len(s) > MaxIDLength {
		return fmt.Errorf("must be 1 to %d bytes", MaxIDLength)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("has a space or an unprintable character")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
