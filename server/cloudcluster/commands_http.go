package cloudcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/protobuf/encoding/protojson"
)

// orgCommandBody is POST /cluster/v1/orgs/{org}/commands: the /api/v1 command body for the actions the
// cluster path carries (no pools, password or firmware: their secrets are sealed by a single member).
type orgCommandBody struct {
	IdempotencyKey string   `json:"idempotency_key"`
	MinerIDs       []string `json:"miner_ids"`
	Action         string   `json:"action"`
	PowerTargetW   float64  `json:"power_target_w"`
	CoolingMode    string   `json:"cooling_mode,omitempty"`
	FanPWM         int      `json:"fan_pwm,omitempty"`
	// Actor names who issues it; default "cluster:admin" (the bearer is the admin token).
	Actor string `json:"actor,omitempty"`
}

type issuedPartJSON struct {
	Node         string   `json:"node"`
	MinerIDs     []string `json:"miner_ids"`
	Seq          uint64   `json:"seq"`
	Sent         bool     `json:"sent"`
	StreamMember string   `json:"stream_member,omitempty"`
	Error        string   `json:"error,omitempty"`
}

type orgIssueJSON struct {
	CommandID string           `json:"command_id"`
	Existing  bool             `json:"existing"`
	OrgMember string           `json:"org_member"`
	Parts     []issuedPartJSON `json:"parts"`
}

// orgCommandJSON is the single-member API's command (api.CommandJSON) with the org, whether it is still
// open, and its deadline.
type orgCommandJSON struct {
	api.CommandJSON
	Org      string    `json:"org"`
	Active   bool      `json:"active"`
	Deadline time.Time `json:"deadline"`
}

type minerCommandJSON struct {
	CommandID string              `json:"command_id"`
	Node      string              `json:"node"`
	Result    api.MinerResultJSON `json:"result"`
	CreatedAt *time.Time          `json:"created_at"`
	Deadline  *time.Time          `json:"deadline"`
}

type minerJSON struct {
	MinerID     string             `json:"miner_id"`
	Known       bool               `json:"known"`
	Node        string             `json:"node,omitempty"`
	Org         string             `json:"org,omitempty"`
	GrainMember string             `json:"grain_member"`
	Latest      json.RawMessage    `json:"latest"`
	InFlight    []minerCommandJSON `json:"in_flight"`
}

// decodeOrgCommand reads and checks a command body: bounded size, one JSON object, no unknown fields, a
// known action. The Org grain validates the rest again before recording.
func decodeOrgCommand(w http.ResponseWriter, r *http.Request) (grains.CommandRequest, error) {
	var req grains.CommandRequest
	var in orgCommandBody
	if err := api.DecodeJSON(w, r, maxBody, &in, "command object", false); err != nil {
		return req, err
	}
	action, ok := grains.ParseAction(in.Action)
	if !ok {
		return req, fmt.Errorf("%w: unknown action %q (want one of %s)", ErrInvalid, in.Action, strings.Join(grains.ActionNames(), ", "))
	}
	actor := in.Actor
	if actor == "" {
		actor = "cluster:admin"
	}
	return grains.CommandRequest{MinerIDs: in.MinerIDs, Action: action, PowerTargetW: in.PowerTargetW, CoolingMode: in.CoolingMode,
		FanPWM: in.FanPWM, IdempotencyKey: in.IdempotencyKey, Actor: actor}, nil
}

func (m *Member) handleOrgIssue(w http.ResponseWriter, r *http.Request) {
	req, err := decodeOrgCommand(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rep, err := m.OrgIssue(r.Context(), r.PathValue("org"), req)
	if err != nil {
		body := map[string]any{"error": err.Error()}
		if u := rep.GetUnknownMiners(); len(u) > 0 {
			body["unknown_miners"] = u
		}
		writeJSON(w, statusOf(err), body)
		return
	}
	out := orgIssueJSON{CommandID: rep.GetCommandId(), Existing: rep.GetExisting(), OrgMember: rep.GetOrgMember(),
		Parts: make([]issuedPartJSON, 0, len(rep.GetParts()))}
	for _, p := range rep.GetParts() {
		out.Parts = append(out.Parts, issuedPartJSON{Node: p.GetNodeId(), MinerIDs: p.GetMinerIds(), Seq: p.GetSeq(), Sent: p.GetSent(),
			StreamMember: p.GetStreamMember(), Error: p.GetError()})
	}
	code := http.StatusAccepted
	if out.Existing {
		code = http.StatusOK
	}
	writeJSON(w, code, out)
}

func (m *Member) handleCommand(w http.ResponseWriter, r *http.Request) {
	c, err := m.OrgCommand(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, orgCommandJSON{CommandJSON: api.CommandToJSON(c.Record), Org: c.OrgID, Active: c.Active,
		Deadline: c.Deadline.UTC()})
}

func (m *Member) handleMiner(w http.ResponseWriter, r *http.Request) {
	rep, err := m.Miner(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
		return
	}
	out := minerJSON{MinerID: rep.GetMinerId(), Known: rep.GetKnown(), Node: rep.GetNodeId(), Org: rep.GetOrgId(),
		GrainMember: rep.GetGrainMember(), Latest: json.RawMessage("null"), InFlight: make([]minerCommandJSON, 0, len(rep.GetInFlight()))}
	if t := rep.GetLatest(); t != nil {
		if b, err := protojson.Marshal(t); err == nil {
			out.Latest = b
		}
	}
	for _, c := range rep.GetInFlight() {
		out.InFlight = append(out.InFlight, minerCommandJSON{CommandID: c.GetCommandId(), Node: c.GetNodeId(),
			Result: api.MinerResultToJSON(rep.GetMinerId(), c.GetResult()), CreatedAt: tsMs(c.GetCreatedAtUnixMs()), Deadline: tsMs(c.GetDeadlineUnixMs())})
	}
	writeJSON(w, http.StatusOK, out)
}

func tsMs(ms int64) *time.Time {
	if ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}
