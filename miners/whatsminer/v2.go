package whatsminer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// v2Reply covers both reply shapes of API v2: cgminer's {"STATUS":[{...}],"SUMMARY":[...]} for the
// classic reads, and btminer's {"STATUS":"S","Code":131,"Msg":...} for the rest; and {"enc":...} for an
// encrypted answer.
type v2Reply struct {
	Status     json.RawMessage `json:"STATUS"`
	Code       num             `json:"Code"`
	Msg        json.RawMessage `json:"Msg"`
	Summary    []v2Summary     `json:"SUMMARY"`
	Devs       []v2Dev         `json:"DEVS"`
	Pools      []v2Pool        `json:"POOLS"`
	DevDetails []struct {
		Model string `json:"Model"`
	} `json:"DEVDETAILS"`
	Enc string `json:"enc"`
}

type v2Summary struct {
	MHS5s      num    `json:"MHS 5s"`
	MHSav      num    `json:"MHS av"`
	Elapsed    num    `json:"Elapsed"`
	Uptime     num    `json:"Uptime"`
	FanIn      num    `json:"Fan Speed In"`
	FanOut     num    `json:"Fan Speed Out"`
	Power      num    `json:"Power"`
	PowerLimit num    `json:"Power Limit"`
	PowerMode  string `json:"Power Mode"`
	MAC        string `json:"MAC"`
	Firmware   string `json:"Firmware Version"`
}

type v2Dev struct {
	ASC     num `json:"ASC"`
	Slot    num `json:"Slot"`
	Temp    num `json:"Temperature"`
	ChipAvg num `json:"Chip Temp Avg"`
	MHS5s   num `json:"MHS 5s"`
	MHSav   num `json:"MHS av"`
	Chips   num `json:"Effective Chips"`
}

type v2Pool struct {
	POOL     num     `json:"POOL"`
	URL      string  `json:"URL"`
	Status   string  `json:"Status"`
	Priority num     `json:"Priority"`
	Accepted num     `json:"Accepted"`
	Rejected num     `json:"Rejected"`
	User     string  `json:"User"`
	Active   boolish `json:"Stratum Active"`
}

// check returns the reply's refusal as an error wrapping miners.ErrRefused (errTokenCheck for 135).
func (r *v2Reply) check(what string) error {
	if len(r.Status) == 0 {
		return fmt.Errorf("%s: reply has no STATUS: %w", what, miners.ErrMalformed)
	}
	var status, msg string
	code := int(r.Code.v)
	if r.Status[0] == '[' {
		var ss []struct {
			Status string `json:"STATUS"`
			Msg    string `json:"Msg"`
			Code   num    `json:"Code"`
		}
		if err := json.Unmarshal(r.Status, &ss); err != nil || len(ss) == 0 {
			return fmt.Errorf("%s: unreadable STATUS: %w", what, miners.ErrMalformed)
		}
		status, msg, code = ss[0].Status, ss[0].Msg, int(ss[0].Code.v)
	} else {
		if err := json.Unmarshal(r.Status, &status); err != nil {
			return fmt.Errorf("%s: unreadable STATUS: %w", what, miners.ErrMalformed)
		}
		_ = json.Unmarshal(r.Msg, &msg) // a string Msg explains a refusal; an object is data
	}
	switch status {
	case "S", "I", "W":
		return nil
	case "E":
		if code == wmapi.CodeTokenError {
			return fmt.Errorf("%s: %w: %s: %w", what, errTokenCheck, msg, miners.ErrRefused)
		}
		return fmt.Errorf("%s: miner refused (code %d): %s: %w", what, code, msg, miners.ErrRefused)
	}
	return fmt.Errorf("%s: STATUS %.16q: %w", what, status, miners.ErrMalformed)
}

// readV2Cmd sends one clear-text command and returns its checked reply.
func (d *Driver) readV2Cmd(ctx context.Context, req map[string]string) (*v2Reply, error) {
	what := req["cmd"]
	raw, _ := json.Marshal(req)
	body, err := d.roundTripV2(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var r v2Reply
	if err := decode(what, body, &r); err != nil {
		return nil, err
	}
	if err := r.check(what); err != nil {
		return nil, err
	}
	return &r, nil
}

// msgV2 decodes a btminer-style reply's Msg object.
func msgV2(what string, r *v2Reply, out any) error {
	if len(r.Msg) == 0 || r.Msg[0] != '{' {
		return fmt.Errorf("%s: Msg is not an object: %w", what, miners.ErrMalformed)
	}
	return decode(what+" Msg", r.Msg, out)
}

// readV2 fills r from summary, edevs, pools, status and get_error_code (with all, else only what
// GET_POOLS / GET_ERRORS need is read by the callers themselves), refreshing the device info when stale.
func (d *Driver) readV2(ctx context.Context, r *reading, all bool) error {
	sum, err := d.readV2Cmd(ctx, map[string]string{"cmd": "summary"})
	if err != nil {
		return err
	}
	if len(sum.Summary) == 0 {
		return fmt.Errorf("summary: no SUMMARY: %w", miners.ErrMalformed)
	}
	s := sum.Summary[0]
	r.h5, r.hAvg = s.MHS5s.v/1e6, s.MHSav.v/1e6
	r.uptime = int64(s.Uptime.v)
	if !s.Uptime.ok {
		r.uptime = int64(s.Elapsed.v)
	}
	for _, f := range []num{s.FanIn, s.FanOut} {
		if f.ok {
			r.fans = append(r.fans, int32(f.v))
		}
	}
	r.powerW, r.limitW, r.powerMode = s.Power.v, s.PowerLimit.v, s.PowerMode
	if !all {
		return nil
	}
	if err := d.infoV2(ctx, s); err != nil {
		return err
	}
	devs, err := d.readV2Cmd(ctx, map[string]string{"cmd": "edevs"})
	if err != nil {
		return err
	}
	for i, dv := range devs.Devs {
		idx := int32(i)
		if dv.Slot.ok {
			idx = int32(dv.Slot.v)
		} else if dv.ASC.ok {
			idx = int32(dv.ASC.v)
		}
		rate := dv.MHS5s
		if !rate.ok {
			rate = dv.MHSav
		}
		r.boards = append(r.boards, &pb.Board{Index: idx, TempC: dv.Temp.v, ChipTempC: dv.ChipAvg.v,
			HashrateThs: round(rate.v / 1e6), Chips: int32(dv.Chips.v)})
	}
	if r.pools, err = d.poolsV2(ctx); err != nil {
		return err
	}
	st, err := d.readV2Cmd(ctx, map[string]string{"cmd": "status"})
	if err != nil {
		return err
	}
	var sm struct {
		Off boolish `json:"btmineroff"`
	}
	if err := msgV2("status", st, &sm); err != nil {
		return err
	}
	r.stopped = bool(sm.Off)
	r.errors, err = d.errorsV2(ctx)
	return err
}

func (d *Driver) poolsV2(ctx context.Context) ([]*pb.Pool, error) {
	rep, err := d.readV2Cmd(ctx, map[string]string{"cmd": "pools"})
	if err != nil {
		return nil, err
	}
	out := make([]*pb.Pool, 0, len(rep.Pools))
	for _, p := range rep.Pools {
		out = append(out, &pb.Pool{Url: p.URL, User: p.User, Priority: int32(p.Priority.v), Status: p.Status,
			Accepted: int64(p.Accepted.v), Rejected: int64(p.Rejected.v), Active: bool(p.Active)})
	}
	slices.SortStableFunc(out, func(a, b *pb.Pool) int { return int(a.Priority - b.Priority) })
	return out, nil
}

// errorsV2 reads get_error_code: {"error_code":[{"CODE":"since"}, ...]} (older firmware: a list of codes).
func (d *Driver) errorsV2(ctx context.Context) ([]string, error) {
	rep, err := d.readV2Cmd(ctx, map[string]string{"cmd": "get_error_code"})
	if err != nil {
		return nil, err
	}
	var m struct {
		Codes []json.RawMessage `json:"error_code"`
	}
	if err := msgV2("get_error_code", rep, &m); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range m.Codes {
		var obj map[string]string
		var s string
		switch {
		case json.Unmarshal(c, &obj) == nil:
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				out = append(out, fmt.Sprintf("error %s since %s", k, obj[k]))
			}
		case json.Unmarshal(c, &s) == nil:
			out = append(out, "error "+s)
		default:
			return nil, fmt.Errorf("get_error_code: unreadable entry %.64s: %w", c, miners.ErrMalformed)
		}
	}
	return out, nil
}

// infoV2 refreshes model, serial, MAC and firmware when older than InfoTTL.
func (d *Driver) infoV2(ctx context.Context, s v2Summary) error {
	now := d.cfg.Clock.Now()
	if !d.infoAt.IsZero() && now.Sub(d.infoAt) < d.cfg.InfoTTL {
		return nil
	}
	var info deviceInfo
	dd, err := d.readV2Cmd(ctx, map[string]string{"cmd": "devdetails"})
	if err != nil {
		return err
	}
	if len(dd.DevDetails) > 0 {
		info.model = "WhatsMiner " + strings.TrimSpace(dd.DevDetails[0].Model)
	}
	mi, err := d.readV2Cmd(ctx, map[string]string{"cmd": "get_miner_info", "info": "mac,minersn,hostname"})
	if err != nil {
		return err
	}
	var m struct {
		MAC    string `json:"mac"`
		Serial string `json:"minersn"`
	}
	if err := msgV2("get_miner_info", mi, &m); err != nil {
		return err
	}
	info.mac, info.serial = m.MAC, m.Serial
	ver, err := d.readV2Cmd(ctx, map[string]string{"cmd": "get_version"})
	if err != nil {
		return err
	}
	var v struct {
		FW string `json:"fw_ver"`
	}
	if err := msgV2("get_version", ver, &v); err != nil {
		return err
	}
	info.firmware = firstNonEmpty(v.FW, s.Firmware)
	if info.mac == "" {
		info.mac = s.MAC
	}
	d.info, d.infoAt = info, now
	return nil
}

// tokenV2 returns the current token, fetching one when there is none or it is older than TokenRefresh.
// fresh reports a token fetched by this call.
func (d *Driver) tokenV2(ctx context.Context) (creds wmapi.V2Credentials, fresh bool, err error) {
	now := d.cfg.Clock.Now()
	if d.haveTok && now.Sub(d.tokenAt) < d.cfg.TokenRefresh {
		return d.creds, false, nil
	}
	rep, err := d.readV2Cmd(ctx, map[string]string{"cmd": "get_token"})
	if err != nil {
		return creds, false, err
	}
	var m struct {
		Time    string `json:"time"`
		Salt    string `json:"salt"`
		NewSalt string `json:"newsalt"`
	}
	if err := msgV2("get_token", rep, &m); err != nil {
		return creds, false, err
	}
	if m.Time == "" || m.Salt == "" || m.NewSalt == "" {
		return creds, false, fmt.Errorf("get_token: time, salt or newsalt missing: %w", miners.ErrMalformed)
	}
	d.creds = wmapi.DeriveV2(d.cfg.Password, m.Salt, m.NewSalt, m.Time)
	d.tokenAt, d.haveTok = now, true
	return d.creds, true, nil
}

// writeV2 sends one authenticated command in the AES envelope and returns the decrypted reply's Msg
// text. A reused token the miner refuses is replaced once; a fresh one refused is ErrBadPassword.
func (d *Driver) writeV2(ctx context.Context, cmd string, params map[string]string) (string, error) {
	for {
		creds, fresh, err := d.tokenV2(ctx)
		if err != nil {
			return "", fmt.Errorf("%s: token: %w", cmd, err)
		}
		msg, err := d.sendV2(ctx, creds, cmd, params)
		if !errors.Is(err, errTokenCheck) {
			return msg, err
		}
		d.haveTok = false
		if fresh {
			return "", fmt.Errorf("%s: %w: %w", cmd, ErrBadPassword, err)
		}
	}
}

func (d *Driver) sendV2(ctx context.Context, creds wmapi.V2Credentials, cmd string, params map[string]string) (string, error) {
	inner := map[string]string{"cmd": cmd, "token": creds.Sign}
	for k, v := range params {
		inner[k] = v
	}
	plain, _ := json.Marshal(inner)
	req, _ := json.Marshal(struct {
		Enc  int    `json:"enc"`
		Data string `json:"data"`
	}{1, wmapi.Seal(creds.AESKey, plain)})
	body, err := d.roundTripV2(ctx, req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	var outer v2Reply
	if err := decode(cmd, body, &outer); err != nil {
		return "", err
	}
	if outer.Enc == "" {
		// A clear answer to an encrypted command is a refusal (or a firmware that does not encrypt).
		if err := outer.check(cmd); err != nil {
			return "", err
		}
		return replyText(&outer), nil
	}
	clear, err := wmapi.Open(creds.AESKey, outer.Enc)
	if err != nil {
		return "", fmt.Errorf("%s: encrypted reply: %w: %w", cmd, err, miners.ErrMalformed)
	}
	var r v2Reply
	if err := decode(cmd+" (decrypted)", clear, &r); err != nil {
		return "", err
	}
	if err := r.check(cmd); err != nil {
		return "", err
	}
	return replyText(&r), nil
}

func replyText(r *v2Reply) string {
	var s string
	if json.Unmarshal(r.Msg, &s) == nil {
		return s
	}
	return ""
}
