package grains

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// Pure command decisions: validating an operator's request, and folding node acks, reports and the timeout
// into a CommandRecord. The CommandTracker actor owns the records and calls these.

// MaxIdempotencyKeyLen bounds an operator's idempotency key.
const MaxIdempotencyKeyLen = 256

// ValidateCommand checks a request before anything is stored. maxMiners bounds the miner list.
func ValidateCommand(req CommandRequest, maxMiners int) error {
	if len(req.MinerIDs) == 0 {
		return fmt.Errorf("%w: miner_ids is empty", ErrInvalidCommand)
	}
	if len(req.MinerIDs) > maxMiners {
		return fmt.Errorf("%w: %d miner ids exceed the limit of %d per command", ErrInvalidCommand, len(req.MinerIDs), maxMiners)
	}
	seen := make(map[string]bool, len(req.MinerIDs))
	for _, id := range req.MinerIDs {
		if err := store.ValidID(id); err != nil {
			return fmt.Errorf("%w: miner id %q: %v", ErrInvalidCommand, id, err)
		}
		if seen[id] {
			return fmt.Errorf("%w: miner id %q appears twice", ErrInvalidCommand, id)
		}
		seen[id] = true
	}
	if ActionName(req.Action) == "" {
		return fmt.Errorf("%w: unknown action %s (want one of %v)", ErrInvalidCommand, req.Action, ActionNames())
	}
	switch {
	case req.Action == pb.Action_ACTION_SET_POWER_TARGET:
		if math.IsNaN(req.PowerTargetW) || req.PowerTargetW <= 0 || req.PowerTargetW > 100_000 {
			return fmt.Errorf("%w: set_power_target needs power_target_w in (0, 100000] watts, got %v", ErrInvalidCommand, req.PowerTargetW)
		}
	case req.PowerTargetW != 0:
		return fmt.Errorf("%w: power_target_w is only valid with set_power_target", ErrInvalidCommand)
	}
	if err := validatePools(req); err != nil {
		return err
	}
	if err := validateFirmware(req); err != nil {
		return err
	}
	if err := validatePassword(req); err != nil {
		return err
	}
	if err := validateCooling(req); err != nil {
		return err
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: idempotency_key of %d bytes exceeds %d", ErrInvalidCommand, len(req.IdempotencyKey), MaxIdempotencyKeyLen)
	}
	return nil
}

func specFor(req CommandRequest) *pb.CommandSpec {
	return &pb.CommandSpec{Action: req.Action, PowerTargetW: req.PowerTargetW, Pools: req.Pools, Firmware: req.Firmware,
		Params: coolingParams(req)}
}

// NewCommandRecord is the record of a freshly issued command: every miner pending.
func NewCommandRecord(id string, req CommandRequest, now time.Time) *pb.CommandRecord {
	rec := &pb.CommandRecord{
		CommandId: id, Actor: req.Actor, CreatedAtUnixMs: now.UnixMilli(),
		MinerIds: slices.Clone(req.MinerIDs), Spec: specFor(req), Status: pb.ResultCode_RESULT_CODE_PENDING,
		Results:        make(map[string]*pb.MinerResult, len(req.MinerIDs)),
		IdempotencyKey: req.IdempotencyKey, NodeSeqs: map[string]uint64{},
	}
	for _, m := range req.MinerIDs {
		rec.Results[m] = &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_PENDING}
	}
	return rec
}

// SameCommand reports whether req asks for what rec records (an idempotent retry).
func SameCommand(rec *pb.CommandRecord, req CommandRequest) bool {
	if rec.GetSpec().GetAction() != req.Action || rec.GetSpec().GetPowerTargetW() != req.PowerTargetW ||
		len(rec.GetMinerIds()) != len(req.MinerIDs) || !samePools(rec.GetSpec().GetPools(), req.Pools) ||
		rec.GetSpec().GetFirmware().GetSha256() != req.Firmware.GetSha256() || !maps.Equal(rec.GetSpec().GetParams(), coolingParams(req)) {
		return false
	}
	a, b := slices.Clone(rec.GetMinerIds()), slices.Clone(req.MinerIDs)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// IsFinalResult reports whether a code ends a miner's part of a command.
func IsFinalResult(c pb.ResultCode) bool {
	switch c {
	case pb.ResultCode_RESULT_CODE_UNSPECIFIED, pb.ResultCode_RESULT_CODE_PENDING,
		pb.ResultCode_RESULT_CODE_RUNNING, pb.ResultCode_RESULT_CODE_DUPLICATE:
		return false
	}
	return true
}

// ApplyAck folds a node's CommandAck for its part (minerIDs) into rec: RUNNING and DUPLICATE move pending
// miners to running; a refusal is final for every miner of the part without a final result.
func ApplyAck(rec *pb.CommandRecord, minerIDs []string, code pb.ResultCode, msg string, now time.Time) bool {
	changed := false
	for _, id := range minerIDs {
		r, ok := rec.Results[id]
		if !ok || IsFinalResult(r.Code) {
			continue
		}
		switch {
		case !IsFinalResult(code):
			if r.Code != pb.ResultCode_RESULT_CODE_RUNNING {
				r.Code = pb.ResultCode_RESULT_CODE_RUNNING
				r.StartedAtUnixMs = now.UnixMilli()
				changed = true
			}
		default:
			r.Code, r.Message, r.FinishedAtUnixMs = code, ackMessage(code, msg), now.UnixMilli()
			changed = true
		}
	}
	return changed
}

func ackMessage(code pb.ResultCode, msg string) string {
	if msg == "" {
		return "refused by node: " + ResultCodeName(code)
	}
	return msg
}

// ApplyReport folds a node's CommandResultReport into rec. Results for miners the command does not name, or
// that already have a final result, are ignored (the first final result wins). When done, every miner of
// the node's part (minerIDs) still without a final result fails.
func ApplyReport(rec *pb.CommandRecord, minerIDs []string, results []*pb.MinerResult, done bool, now time.Time) bool {
	changed := false
	for _, in := range results {
		r, ok := rec.Results[in.GetMinerId()]
		if !ok || IsFinalResult(r.Code) {
			continue
		}
		code := in.GetCode()
		if !IsFinalResult(code) && code != pb.ResultCode_RESULT_CODE_UNSPECIFIED {
			if r.Code != pb.ResultCode_RESULT_CODE_RUNNING { // progress never moves backwards
				r.Code = pb.ResultCode_RESULT_CODE_RUNNING
				r.StartedAtUnixMs = orNow(in.GetStartedAtUnixMs(), now.UnixMilli())
				changed = true
			}
			continue
		}
		msg := in.GetMessage()
		if code == pb.ResultCode_RESULT_CODE_UNSPECIFIED {
			code, msg = pb.ResultCode_RESULT_CODE_FAILED, "node reported a result without a code: "+msg
		}
		r.Code, r.Message = code, msg
		r.StartedAtUnixMs = orNow(in.GetStartedAtUnixMs(), r.StartedAtUnixMs)
		r.FinishedAtUnixMs = orNow(in.GetFinishedAtUnixMs(), now.UnixMilli())
		changed = true
	}
	if done {
		for _, id := range minerIDs {
			if r, ok := rec.Results[id]; ok && !IsFinalResult(r.Code) {
				r.Code = pb.ResultCode_RESULT_CODE_FAILED
				r.Message = "node reported the command done without a result for this miner"
				r.FinishedAtUnixMs = now.UnixMilli()
				changed = true
			}
		}
	}
	return changed
}

func orNow(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// ApplyTimeout marks every miner without a final result as timed out.
func ApplyTimeout(rec *pb.CommandRecord, timeout time.Duration, now time.Time) bool {
	changed := false
	for _, r := range rec.Results {
		if !IsFinalResult(r.Code) {
			r.Code = pb.ResultCode_RESULT_CODE_TIMEOUT
			r.Message = fmt.Sprintf("no result from the node within %s", timeout)
			r.FinishedAtUnixMs = now.UnixMilli()
			changed = true
		}
	}
	return changed
}

// RecordStatus is the overall status: PENDING until some miner is acked, RUNNING while any miner lacks a
// final result, then SUCCEEDED when all succeeded, FAILED when any failed or was refused, else TIMEOUT.
func RecordStatus(rec *pb.CommandRecord) pb.ResultCode {
	var open, started, failed, timedOut int
	for _, r := range rec.Results {
		switch {
		case !IsFinalResult(r.Code):
			open++
			if r.Code == pb.ResultCode_RESULT_CODE_RUNNING || r.Code == pb.ResultCode_RESULT_CODE_DUPLICATE {
				started++
			}
		case r.Code == pb.ResultCode_RESULT_CODE_TIMEOUT:
			timedOut++
		case r.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED:
			failed++
		}
	}
	switch {
	case open > 0 && started == 0 && open == len(rec.Results):
		return pb.ResultCode_RESULT_CODE_PENDING
	case open > 0:
		return pb.ResultCode_RESULT_CODE_RUNNING
	case failed > 0:
		return pb.ResultCode_RESULT_CODE_FAILED
	case timedOut > 0:
		return pb.ResultCode_RESULT_CODE_TIMEOUT
	}
	return pb.ResultCode_RESULT_CODE_SUCCEEDED
}

// SettleRecord updates rec.Status and, when every miner has a final result, FinishedAtUnixMs. It reports whether
// the record finished now.
func SettleRecord(rec *pb.CommandRecord, now time.Time) bool {
	rec.Status = RecordStatus(rec)
	if rec.FinishedAtUnixMs != 0 || !IsFinalResult(rec.Status) {
		return false
	}
	rec.FinishedAtUnixMs = now.UnixMilli()
	return true
}

// resultCounts counts final per-miner results by API name, for metrics.
func resultCounts(rec *pb.CommandRecord) map[string]int {
	out := map[string]int{}
	for _, r := range rec.Results {
		out[ResultName(r.Code)]++
	}
	return out
}

// applyDesired folds an issued command into a miner's desired state.
func applyDesired(d Desired, spec *pb.CommandSpec, now time.Time) (Desired, bool) {
	before := d
	switch spec.GetAction() {
	case pb.Action_ACTION_START_MINING:
		d.Run = "running"
	case pb.Action_ACTION_STOP_MINING:
		d.Run = "stopped"
	case pb.Action_ACTION_CURTAIL:
		d.Curtailment = "curtailed"
	case pb.Action_ACTION_UNCURTAIL:
		d.Curtailment = "uncurtailed"
	case pb.Action_ACTION_SET_POWER_TARGET:
		d.PowerTargetW = spec.GetPowerTargetW()
	}
	if d == before {
		return d, false
	}
	d.UpdatedAt = now
	return d, true
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

// maxPools is the most pools a miner takes (CGMiner, Antminer and Proto rig alike).
const maxPools = 3

// validatePools checks update_pools' pools (1 to 3, each with a stratum URL); other actions take none.
func validatePools(req CommandRequest) error {
	if req.Action != pb.Action_ACTION_UPDATE_POOLS {
		if len(req.Pools) > 0 {
			return fmt.Errorf("%w: pools are only valid with update_pools", ErrInvalidCommand)
		}
		return nil
	}
	if len(req.Pools) == 0 || len(req.Pools) > maxPools {
		return fmt.Errorf("%w: update_pools needs 1 to %d pools, got %d", ErrInvalidCommand, maxPools, len(req.Pools))
	}
	for i, p := range req.Pools {
		u := p.GetUrl()
		if u == "" || len(u) > 512 || len(p.GetUser()) > 256 || len(p.GetPassword()) > 256 {
			return fmt.Errorf("%w: pool %d needs a URL (at most 512 bytes; user and password at most 256)", ErrInvalidCommand, i)
		}
		if p.GetPriority() < 0 || p.GetPriority() > 99 {
			return fmt.Errorf("%w: pool %d priority %d must be in [0, 99]", ErrInvalidCommand, i, p.GetPriority())
		}
	}
	return nil
}

func samePools(a, b []*pb.Pool) bool {
	return slices.EqualFunc(a, b, func(x, y *pb.Pool) bool {
		return x.GetUrl() == y.GetUrl() && x.GetUser() == y.GetUser() && samePassword(x, y) && x.GetPriority() == y.GetPriority()
	})
}
