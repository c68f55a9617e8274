package localui

import (
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/uplink"
)

// Adapters from the node's own types, so the node's Site implementation is a thin shell.

// StateName is the UI name of a miner state: "mining", "stopped", ... and "unknown" for UNSPECIFIED.
func StateName(s pb.MinerState) string {
	if s == pb.MinerState_MINER_STATE_UNSPECIFIED {
		return "unknown"
	}
	n := strings.ToLower(strings.TrimPrefix(s.String(), "MINER_STATE_"))
	if _, err := parseStateName(n); err != nil {
		return "unknown"
	}
	return n
}

// StateNames are the states a MinerView may be in.
var StateNames = []string{"mining", "stopped", "curtailed", "rebooting", "online", "unreachable", "unknown"}

func parseStateName(n string) (string, error) {
	for _, s := range StateNames {
		if s == n {
			return s, nil
		}
	}
	return "", ErrInvalidRequest
}

// MinerViewFromStatus is the view of a MinerActor's status (node.Miners / node.Miner). Telemetry comes from
// the last good sample; the error from the last failed poll or command.
func MinerViewFromStatus(s miner.Status) MinerView {
	v := MinerView{
		ID:         s.MinerID,
		State:      StateName(s.State),
		StateSince: s.StateSince,
		Error:      s.LastError,
		LastPollAt: s.LastPollAt,
	}
	if d := s.Device; d != nil {
		v.Model, v.Address = d.GetModel(), d.GetAddress()
	}
	// Model, firmware and pools come from the last good sample; live readings only from the latest sample
	// when it is good: an unreachable miner's last hashrate is not its hashrate now.
	info, live := s.LastGood, s.Sample
	if live != nil && live.GetPollError() != "" {
		live = nil
	}
	if info == nil {
		info = live
	}
	if info != nil {
		if info.GetModel() != "" {
			v.Model = info.GetModel()
		}
		v.Firmware = info.GetFirmware()
		for _, p := range info.GetPools() {
			v.Pools = append(v.Pools, PoolView{URL: p.GetUrl(), User: p.GetUser(), Status: p.GetStatus(), Active: p.GetActive()})
		}
	}
	if live != nil {
		v.HashrateTHs, v.HashrateAvgTHs = live.GetHashrate_5SThs(), live.GetHashrateAvgThs()
		v.PowerW, v.PowerTargetW = live.GetPowerW(), live.GetPowerTargetW()
		v.FansRPM = live.GetFansRpm()
		v.UptimeS = live.GetUptimeS()
		v.WorkMode = live.GetWorkMode()
		v.Errors = live.GetErrors()
		for _, b := range live.GetBoards() {
			v.Boards = append(v.Boards, BoardView{Index: b.GetIndex(), TempC: b.GetTempC(), ChipTempC: b.GetChipTempC(),
				HashrateTHs: b.GetHashrateThs(), Chips: b.GetChips()})
			v.TempMaxC = max(v.TempMaxC, b.GetTempC(), b.GetChipTempC())
		}
	}
	return v
}

// LinkViewFromStatus is the view of the uplink's status (node.LinkStatus); configured is false for a node
// run without a cloud link (node.ErrNoUplink).
func LinkViewFromStatus(s uplink.Status, configured bool) LinkView {
	return LinkView{Configured: configured, Up: s.Up, Since: s.Since, LastError: s.LastError}
}

// CommandViewFromPB is the view of a persisted local command.
func CommandViewFromPB(c *pb.LocalCommand) CommandView {
	v := CommandView{
		ID:             c.GetCommandId(),
		IdempotencyKey: c.GetIdempotencyKey(),
		Actor:          c.GetActor(),
		Action:         ActionName(c.GetSpec().GetAction()),
		PowerTargetW:   c.GetSpec().GetPowerTargetW(),
		MinerIDs:       c.GetMinerIds(),
		HLC:            hlc.Format(c.GetHlc()),
		LeaseEpoch:     c.GetLeaseEpoch(),
		LocalOrigin:    c.GetLocalOrigin(),
	}
	if w := c.GetHlc().GetWallMs(); w > 0 {
		v.IssuedAt = time.UnixMilli(w).UTC()
	}
	for _, r := range c.GetResults() {
		rv := ResultView{MinerID: r.GetMinerId(), Code: ResultCodeName(r.GetCode()), Message: r.GetMessage()}
		if f := r.GetFinishedAtUnixMs(); f > 0 {
			rv.FinishedAt = time.UnixMilli(f).UTC()
		}
		v.Results = append(v.Results, rv)
	}
	v.Summarize()
	return v
}

// ResultCodeName is "succeeded", "failed", ... for a pb.ResultCode.
func ResultCodeName(c pb.ResultCode) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "RESULT_CODE_"))
}
