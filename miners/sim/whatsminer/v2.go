package whatsminer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// v2Writes are the write commands this simulator carries out (others are refused as invalid).
var v2Writes = map[string]bool{"reboot": true, "power_off": true, "power_on": true, "adjust_power_limit": true, "update_pools": true, "set_led": true}

// serveV2 answers one API v2 request: one JSON object in, one reply out, then the connection closes.
func (m *Miner) serveV2(c net.Conn) {
	var req map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(c, int64(m.fleet.cfg.MaxRequestBytes)))
	if err := dec.Decode(&req); err != nil {
		m.replyV2(c, plainStatus("E", wmapi.CodeInvalidJSON, "invalid json message"), false)
		return
	}
	if data, ok := req["data"]; ok {
		m.serveEncrypted(c, data)
		return
	}
	var cmd string
	_ = json.Unmarshal(req["cmd"], &cmd)
	if v2Writes[cmd] {
		m.logWrite(Write{APIVersion: 2, Command: cmd, Params: flatten(req), Remote: c.RemoteAddr().String(), Reason: "not encrypted"})
		m.replyV2(c, plainStatus("E", wmapi.CodePermission, "permission denied"), false)
		return
	}
	m.replyV2(c, m.readV2(cmd, req), false)
}

// serveEncrypted checks the envelope and token of a write and carries it out.
func (m *Miner) serveEncrypted(c net.Conn, data json.RawMessage) {
	remote := c.RemoteAddr().String()
	var b64 string
	if err := json.Unmarshal(data, &b64); err != nil {
		m.replyV2(c, plainStatus("E", wmapi.CodeBase64Error, "base64 decode error"), false)
		return
	}
	m.mu.Lock()
	key := m.aesKey
	m.mu.Unlock()
	clear, err := wmapi.Open(key, b64)
	if err != nil {
		m.logWrite(Write{APIVersion: 2, Remote: remote, Reason: "bad envelope: " + err.Error()})
		m.replyV2(c, plainStatus("E", wmapi.CodeBase64Error, "base64 decode error"), false)
		return
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(clear, &inner) != nil {
		// Encrypted under another key: the password the client used is not this miner's.
		m.logWrite(Write{APIVersion: 2, Remote: remote, Reason: "check token err: envelope does not decrypt"})
		m.replyV2(c, plainStatus("E", wmapi.CodeTokenError, "check token err"), false)
		return
	}
	var cmd, token string
	_ = json.Unmarshal(inner["cmd"], &cmd)
	_ = json.Unmarshal(inner["token"], &token)
	params := flatten(inner)
	delete(params, "token")
	w := Write{APIVersion: 2, Command: cmd, Params: params, Remote: remote}
	if reason := m.checkToken(token); reason != "" {
		w.Reason = reason
		m.logWrite(w)
		m.replyV2(c, plainStatus("E", wmapi.CodeTokenError, "check token err"), false)
		return
	}
	code, msg := m.writeV2(cmd, params)
	w.Accepted = code == wmapi.CodeOK
	if !w.Accepted {
		w.Reason = msg
	}
	m.logWrite(w)
	st := "S"
	if !w.Accepted {
		st = "E"
	}
	m.replyV2(c, plainStatus(st, code, msg), true)
}

// checkToken returns why token is refused, or "".
func (m *Miner) checkToken(token string) string {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[token]
	switch {
	case token == "" || !ok:
		return "check token err: unknown token"
	case now.Sub(t.issued) >= m.fleet.cfg.TokenTTL:
		delete(m.tokens, token)
		return "check token err: token expired"
	}
	return ""
}

// issueToken answers get_token and remembers the sign it implies.
func (m *Miner) issueToken() map[string]any {
	now := m.fleet.cfg.Clock.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	newsalt := randomSalt()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.tokens) >= maxTokens {
		var oldest string
		for k, t := range m.tokens {
			if oldest == "" || t.issued.Before(m.tokens[oldest].issued) {
				oldest = k
			}
		}
		delete(m.tokens, oldest)
	}
	m.tokens[wmapi.V2Sign(m.key, ts, newsalt)] = tokenInfo{issued: now}
	return btStatus("S", wmapi.CodeTokenOK, map[string]string{"time": ts, "salt": m.salt, "newsalt": newsalt}, now)
}

// writeV2 carries out an authenticated write and returns its code and message.
func (m *Miner) writeV2(cmd string, p map[string]string) (int, string) {
	switch cmd {
	case "reboot":
		if m.wt.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}) != nil {
			return wmapi.CodeError, "reboot failed"
		}
		m.setLED(false)
		return wmapi.CodeOK, ""
	case "power_off":
		if m.wt.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}) != nil {
			return wmapi.CodeError, "power off failed"
		}
		return wmapi.CodeOK, ""
	case "power_on":
		if m.wt.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL}) != nil {
			return wmapi.CodeError, "power on failed"
		}
		return wmapi.CodeOK, ""
	case "adjust_power_limit":
		return m.setLimit(p["power_limit"])
	case "set_led":
		switch {
		case p["param"] == "auto":
			return m.setLED(false)
		case p["color"] == "red" || p["color"] == "green":
			return m.setLED(true)
		}
		return wmapi.CodeError, "set_led needs param auto or a color"
	case "update_pools":
		var pools []*pb.Pool
		for i := 1; i <= 3; i++ {
			n := strconv.Itoa(i)
			if u := strings.TrimSpace(p["pool"+n]); u != "" {
				pools = append(pools, &pb.Pool{Url: u, User: p["worker"+n], Password: p["passwd"+n], Priority: int32(i - 1)})
			}
		}
		return m.setPools(pools)
	}
	return wmapi.CodeInvalidCommand, "invalid cmd"
}

func (m *Miner) setLimit(v string) (int, string) {
	w, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || w < 100 || w > 20000 {
		return wmapi.CodeError, fmt.Sprintf("invalid power_limit %q", v)
	}
	m.mu.Lock()
	m.limitW = w
	m.mu.Unlock()
	return wmapi.CodeOK, ""
}

func (m *Miner) setLED(on bool) (int, string) {
	m.mu.Lock()
	m.led = on
	m.mu.Unlock()
	return wmapi.CodeOK, ""
}

func (m *Miner) setPools(pools []*pb.Pool) (int, string) {
	if len(pools) == 0 {
		return wmapi.CodeError, "no pool given"
	}
	if m.wt.Execute(&pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools}) != nil {
		return wmapi.CodeError, "update pools failed"
	}
	return wmapi.CodeOK, ""
}

// readV2 answers a clear-text read.
func (m *Miner) readV2(cmd string, req map[string]json.RawMessage) map[string]any {
	if cmd == "get_token" {
		return m.issueToken()
	}
	now := m.fleet.cfg.Clock.Now()
	s := m.Snapshot()
	classic := func(msg, key string, rows any) map[string]any {
		return map[string]any{"STATUS": []any{map[string]any{"STATUS": "S", "When": now.Unix(), "Code": 11, "Msg": msg, "Description": "btminer"}},
			key: rows, "id": 1}
	}
	switch cmd {
	case "summary":
		fanIn, fanOut := 0, 0
		if len(s.API.Fans) > 0 {
			fanIn, fanOut = s.API.Fans[0], s.API.Fans[len(s.API.Fans)-1]
		}
		return classic("Summary", "SUMMARY", []any{map[string]any{
			"Elapsed": int64(s.API.Uptime / time.Second), "Uptime": int64(s.API.Uptime / time.Second),
			"MHS av": s.API.HashrateAvgTHs * 1e6, "MHS 5s": s.HashrateTHs * 1e6, "MHS 1m": s.HashrateTHs * 1e6,
			"Temperature": maxOf(s.API.BoardTemps), "Fan Speed In": fanIn, "Fan Speed Out": fanOut,
			"Power": s.PowerW, "Power Limit": s.PowerLimitW, "Power Mode": "Normal", "MAC": s.API.MAC,
			"Firmware Version": "'" + firmware + "'", "Chip Temp Avg": avgOf(s.API.ChipTemps),
		}})
	case "edevs", "devs":
		rows := make([]any, 0, len(s.BoardTHs))
		for i, th := range s.BoardTHs {
			rows = append(rows, map[string]any{"ASC": i, "Slot": i, "Enabled": "Y", "Status": "Alive",
				"Temperature": at(s.API.BoardTemps, i), "Chip Temp Avg": at(s.API.ChipTemps, i),
				"MHS av": th * 1e6, "MHS 5s": th * 1e6, "Effective Chips": 156})
		}
		return classic("devs", "DEVS", rows)
	case "pools":
		rows := make([]any, 0, len(s.API.Pools))
		for i, p := range s.API.Pools {
			rows = append(rows, map[string]any{"POOL": i + 1, "URL": p.URL, "Status": p.Status, "Priority": p.Priority,
				"Accepted": p.Accepted, "Rejected": p.Rejected, "User": p.User, "Stratum Active": p.Active})
		}
		return classic(fmt.Sprintf("%d Pool(s)", len(rows)), "POOLS", rows)
	case "devdetails":
		return classic("Device Details", "DEVDETAILS", []any{map[string]any{"DEVDETAILS": 0, "Name": "SM", "Driver": "bitmicro", "Model": s.Model}})
	case "status":
		return btStatus("S", wmapi.CodeOK, map[string]string{"btmineroff": strconv.FormatBool(s.PoweredOff), "Firmware Version": "'" + firmware + "'"}, now)
	case "get_version":
		return btStatus("S", wmapi.CodeOK, map[string]string{"api_ver": "2.0.5", "fw_ver": firmware, "platform": "H6OS", "chip": "K210"}, now)
	case "get_miner_info":
		return btStatus("S", wmapi.CodeOK, map[string]string{"mac": s.API.MAC, "minersn": s.API.Serial, "hostname": "WhatsMiner-" + m.id,
			"ip": strings.Split(m.AddrV2(), ":")[0]}, now)
	case "get_error_code":
		codes := make([]map[string]string, 0, len(s.Errors))
		for _, e := range s.Errors {
			codes = append(codes, map[string]string{strconv.Itoa(e.Code): e.Since.UTC().Format(time.DateTime)})
		}
		return btStatus("S", wmapi.CodeOK, map[string]any{"error_code": codes}, now)
	}
	return plainStatus("E", wmapi.CodeInvalidCommand, "invalid cmd")
}

// firmware is the version every simulated miner reports.
const firmware = "20240501.22.REL"

func btStatus(st string, code int, msg any, now time.Time) map[string]any {
	return map[string]any{"STATUS": st, "When": now.Unix(), "Code": code, "Msg": msg, "Description": ""}
}

func plainStatus(st string, code int, msg string) map[string]any {
	return map[string]any{"STATUS": st, "When": time.Now().Unix(), "Code": code, "Msg": msg, "Description": ""}
}

// replyV2 writes a reply, encrypted when enc, with the miner's fault applied.
func (m *Miner) replyV2(c net.Conn, reply map[string]any, enc bool) {
	body, _ := json.Marshal(reply)
	fault := m.currentFault()
	if enc {
		m.mu.Lock()
		key := m.aesKey
		m.mu.Unlock()
		sealed := wmapi.Seal(key, body)
		if fault == FaultBadEnvelope {
			sealed = "%%not-base64%%"
		}
		body, _ = json.Marshal(map[string]string{"enc": sealed})
	}
	switch fault {
	case FaultTruncated:
		body = body[:len(body)/2]
	case FaultOversized:
		body = append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 2<<20)...), `"}`...)
	case FaultClose:
		return
	}
	_, _ = c.Write(body)
}

// flatten turns a request's fields into strings for the write log and the handlers.
func flatten(req map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(req))
	for k, v := range req {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	delete(out, "cmd")
	return out
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func avgOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}
