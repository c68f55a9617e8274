package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Batches splits ids, in order, into batches of at most size.
func Batches(ids []string, size int) [][]string {
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, slices.Clone(ids[:n]))
		ids = ids[n:]
	}
	return out
}

// MinerGate is one updated miner's health check.
type MinerGate struct {
	MinerID     string  `json:"miner_id"`
	PreTHs      float64 `json:"pre_ths"`
	PostTHs     float64 `json:"post_ths"`
	Ratio       float64 `json:"ratio"`
	Result      string  `json:"result"` // the update command's result on the miner: succeeded, failed, ...
	Message     string  `json:"message,omitempty"`
	Passed      bool    `json:"passed"`
	FailureNote string  `json:"failure,omitempty"`
}

// GateResult is a batch's health gate.
type GateResult struct {
	Passed bool        `json:"passed"`
	Miners []MinerGate `json:"miners"`
	Reason string      `json:"reason,omitempty"`
}

// Evaluate is the health gate of a batch: every miner's update succeeded and its hashrate after settling is
// at least minRatio of its hashrate before the update. A miner with no pre-update hashrate (it was not
// hashing) passes on the update's success alone.
func Evaluate(batch []string, pre, post map[string]float64, results map[string]*pb.MinerResult, minRatio float64) GateResult {
	g := GateResult{Passed: true}
	var failing []string
	for _, id := range batch {
		m := MinerGate{MinerID: id, PreTHs: pre[id], PostTHs: post[id], Passed: true}
		r := results[id]
		m.Result, m.Message = resultName(r.GetCode()), r.GetMessage()
		if m.PreTHs > 0 {
			m.Ratio = m.PostTHs / m.PreTHs
		}
		switch {
		case r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED:
			m.Passed, m.FailureNote = false, fmt.Sprintf("update %s: %s", m.Result, r.GetMessage())
		case m.PreTHs > 0 && m.Ratio < minRatio:
			m.Passed, m.FailureNote = false, fmt.Sprintf("hashrate %.2f TH/s is %.0f%% of %.2f TH/s before the update (gate %.0f%%)",
				m.PostTHs, 100*m.Ratio, m.PreTHs, 100*minRatio)
		}
		if !m.Passed {
			g.Passed = false
			failing = append(failing, id+": "+m.FailureNote)
		}
		g.Miners = append(g.Miners, m)
	}
	if !g.Passed {
		sort.Strings(failing)
		g.Reason = fmt.Sprintf("%d of %d miners failed the health gate: %s", len(failing), len(batch), strings.Join(failing, "; "))
	}
	return g
}

func resultName(c pb.ResultCode) string {
	if c == pb.ResultCode_RESULT_CODE_UNSPECIFIED {
		return "no result"
	}
	return strings.ToLower(strings.TrimPrefix(c.String(), "RESULT_CODE_"))
}
