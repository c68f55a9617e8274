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

// v3Reply is every API v3 answer: {"code":0,"when":...,"msg":...,"desc":"..."}.
type v3Reply struct {
	Code *int            `json:"code"`
	Msg  json.RawMessage `json:"msg"`
	Desc string          `json:"desc"`
}

type v3Summary struct {
	Elapsed    num    `json:"elapsed"`
	HashRT     num    `json:"hash-realtime"` // TH/s
	HashAvg    num    `json:"hash-average"`  // TH/s
	Power      num    `json:"power-realtime"`
	PowerLimit num    `json:"power-limit"`
	FanIn      num    `json:"fan-speed-in"`
	FanOut     num    `json:"fan-speed-out"`
	PowerMode  string `json:"power-mode"`
}

type v3Dev struct {
	ID      num `json:"id"`
	Slot    num `json:"slot"`
	Hash    num `json:"hash-average"` // TH/s
	Temp    num `json:"board-temperature"`
	ChipAvg num `json:"chip-temp-avg"`
	Chips   num `json:"effective-chips"`
}

type v3Pool struct {
	ID       num     `json:"id"`
	URL      string  `json:"url"`
	Status   string  `json:"status"`
	Account  string  `json:"account"`
	Accepted num     `json:"accepted"`
	Rejected num     `json:"rejected"`
	Active   boolish `json:"stratum-active"`
}

type v3DeviceInfo struct {
	Miner struct {
		Type    string  `json:"type"`
		SN      string  `json:"miner-sn"`
		Working boolish `json:"working"`
	} `json:"miner"`
	System struct {
		FW string `json:"fwversion"`
	} `json:"system"`
	Network struct {
		MAC string `json:"mac"`
	} `json:"network"`
	Salt   string `json:"salt"`
	Errors []struct {
		Code   num    `json:"code"`
		Reason string `json:"reason"`
		Time   string `json:"time"`
	} `json:"error-code"`
}

// callV3 sends one request and returns its reply's msg after checking the code.
func (d *Driver) callV3(ctx context.Context, req map[string]any, out any) error {
	what, _ := req["cmd"].(string)
	if p, ok := req["param"].(string); ok && p != "" {
		what += " " + p
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", what, err)
	}
	body, err := d.roundTripV3(ctx, raw)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var r v3Reply
	if err := decode(what, body, &r); err != nil {
		return err
	}
	switch {
	case r.Code == nil:
		return fmt.Errorf("%s: reply has no code: %w", what, miners.ErrMalformed)
	case *r.Code == wmapi.V3PermissionDenied:
		return fmt.Errorf("%s: %w: %s: %w", what, errPermission, r.Desc, miners.ErrRefused)
	case *r.Code != wmapi.V3OK:
		return fmt.Errorf("%s: miner refused (code %d): %s: %w", what, *r.Code, r.Desc, miners.ErrRefused)
	}
	if out == nil {
		return nil
	}
	if len(r.Msg) == 0 {
		return fmt.Errorf("%s: reply has no msg: %w", what, miners.ErrMalformed)
	}
	return decode(what+" msg", r.Msg, out)
}

func (d *Driver) deviceInfoV3(ctx context.Context) (*v3DeviceInfo, error) {
	var di v3DeviceInfo
	if err := d.callV3(ctx, map[string]any{"cmd": "get.device.info"}, &di); err != nil {
		return nil, err
	}
	d.info = deviceInfo{model: firstNonEmpty(di.Miner.Type, d.info.model), serial: di.Miner.SN, mac: di.Network.MAC, firmware: di.System.FW}
	if di.Miner.Type != "" && !hasPrefixFold(di.Miner.Type, "whatsminer") {
		d.info.model = "WhatsMiner " + di.Miner.Type
	}
	d.infoAt = d.cfg.Clock.Now()
	if di.Salt != "" {
		d.salt = di.Salt
	}
	return &di, nil
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

// readV3 fills r from get.miner.status (summary, edevs, pools) and get.device.info.
func (d *Driver) readV3(ctx context.Context, r *reading, all bool) error {
	var s struct {
		Summary *v3Summary `json:"summary"`
	}
	if err := d.callV3(ctx, map[string]any{"cmd": "get.miner.status", "param": "summary"}, &s); err != nil {
		return err
	}
	if s.Summary == nil {
		return fmt.Errorf("get.miner.status summary: no summary: %w", miners.ErrMalformed)
	}
	r.h5, r.hAvg, r.uptime = s.Summary.HashRT.v, s.Summary.HashAvg.v, int64(s.Summary.Elapsed.v)
	for _, f := range []num{s.Summary.FanIn, s.Summary.FanOut} {
		if f.ok {
			r.fans = append(r.fans, int32(f.v))
		}
	}
	r.powerW, r.limitW, r.powerMode = s.Summary.Power.v, s.Summary.PowerLimit.v, s.Summary.PowerMode
	if !all {
		return nil
	}
	var e struct {
		Edevs []v3Dev `json:"edevs"`
	}
	if err := d.callV3(ctx, map[string]any{"cmd": "get.miner.status", "param": "edevs"}, &e); err != nil {
		return err
	}
	for i, dv := range e.Edevs {
		idx := int32(i)
		if dv.Slot.ok {
			idx = int32(dv.Slot.v)
		}
		r.boards = append(r.boards, &pb.Board{Index: idx, TempC: dv.Temp.v, ChipTempC: dv.ChipAvg.v, HashrateThs: round(dv.Hash.v), Chips: int32(dv.Chips.v)})
	}
	var err error
	if r.pools, err = d.poolsV3(ctx); err != nil {
		return err
	}
	di, err := d.deviceInfoV3(ctx)
	if err != nil {
		return err
	}
	r.stopped = !bool(di.Miner.Working)
	r.errors = errorsV3(di)
	return nil
}

func errorsV3(di *v3DeviceInfo) []string {
	var out []string
	for _, e := range di.Errors {
		s := fmt.Sprintf("error %d", int(e.Code.v))
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		if e.Time != "" {
			s += " since " + e.Time
		}
		out = append(out, s)
	}
	return out
}

func (d *Driver) poolsV3(ctx context.Context) ([]*pb.Pool, error) {
	var p struct {
		Pools []v3Pool `json:"pools"`
	}
	if err := d.callV3(ctx, map[string]any{"cmd": "get.miner.status", "param": "pools"}, &p); err != nil {
		return nil, err
	}
	out := make([]*pb.Pool, 0, len(p.Pools))
	for i, x := range p.Pools {
		prio := int32(i)
		if x.ID.ok {
			prio = int32(x.ID.v) - 1
		}
		out = append(out, &pb.Pool{Url: x.URL, User: x.Account, Priority: prio, Status: x.Status,
			Accepted: int64(x.Accepted.v), Rejected: int64(x.Rejected.v), Active: bool(x.Active)})
	}
	slices.SortStableFunc(out, func(a, b *pb.Pool) int { return int(a.Priority - b.Priority) })
	return out, nil
}

// writeV3 sends one authenticated command. A refusal with a salt learnt earlier fetches the salt again and
// retries once; a refusal with a fresh salt is ErrBadPassword.
func (d *Driver) writeV3(ctx context.Context, cmd string, param any) error {
	for attempt := 0; ; attempt++ {
		fresh := false
		if d.salt == "" {
			if _, err := d.deviceInfoV3(ctx); err != nil {
				return fmt.Errorf("%s: salt: %w", cmd, err)
			}
			if d.salt == "" {
				return fmt.Errorf("%s: get.device.info gave no salt: %w", cmd, miners.ErrMalformed)
			}
			fresh = true
		}
		ts := d.cfg.Clock.Now().Unix()
		req := map[string]any{"cmd": cmd, "ts": ts, "account": d.cfg.Account,
			"token": wmapi.V3Token(cmd, d.cfg.Password, d.salt, ts)}
		if param != nil {
			req["param"] = param
		}
		err := d.callV3(ctx, req, nil)
		if !errors.Is(err, errPermission) {
			return err
		}
		d.salt = ""
		if fresh || attempt > 0 {
			return fmt.Errorf("%s: %w: %w", cmd, ErrBadPassword, err)
		}
	}
}
