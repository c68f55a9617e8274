package whatsminer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// v3Request is one API v3 request.
type v3Request struct {
	Cmd     string          `json:"cmd"`
	Param   json.RawMessage `json:"param"`
	TS      int64           `json:"ts"`
	Account string          `json:"account"`
	Token   string          `json:"token"`
}

// serveV3 answers one framed request. A frame announcing more than MaxRequestBytes closes the connection.
func (m *Miner) serveV3(c net.Conn) {
	raw, err := wmapi.ReadFrame(c, m.fleet.cfg.MaxRequestBytes)
	if err != nil {
		return
	}
	var req v3Request
	if err := json.Unmarshal(raw, &req); err != nil {
		m.replyV3(c, v3Reply(wmapi.V3InvalidJSON, nil, "invalid json"))
		return
	}
	if strings.HasPrefix(req.Cmd, "set.") {
		m.replyV3(c, m.writeV3(c.RemoteAddr().String(), &req))
		return
	}
	m.replyV3(c, m.readV3(&req))
}

func v3Reply(code int, msg any, desc string) map[string]any {
	r := map[string]any{"code": code, "when": time.Now().Unix(), "desc": desc}
	if msg != nil {
		r["msg"] = msg
	}
	return r
}

func (m *Miner) readV3(req *v3Request) map[string]any {
	s := m.Snapshot()
	var param string
	_ = json.Unmarshal(req.Param, &param)
	switch req.Cmd {
	case "get.miner.status":
		switch param {
		case "summary":
			fanIn, fanOut := 0, 0
			if len(s.API.Fans) > 0 {
				fanIn, fanOut = s.API.Fans[0], s.API.Fans[len(s.API.Fans)-1]
			}
			return v3Reply(wmapi.V3OK, map[string]any{"summary": map[string]any{
				"elapsed": int64(s.API.Uptime / time.Second), "hash-realtime": s.HashrateTHs, "hash-average": s.API.HashrateAvgTHs,
				"power-realtime": s.PowerW, "power-limit": s.PowerLimitW, "fan-speed-in": fanIn, "fan-speed-out": fanOut,
				"power-mode": "Normal", "chip-temp-avg": avgOf(s.API.ChipTemps), "board-temperature": s.API.BoardTemps,
			}}, req.Cmd)
		case "edevs":
			rows := make([]any, 0, len(s.BoardTHs))
			for i, th := range s.BoardTHs {
				rows = append(rows, map[string]any{"id": i, "slot": i, "hash-average": th,
					"board-temperature": at(s.API.BoardTemps, i), "chip-temp-avg": at(s.API.ChipTemps, i), "effective-chips": 156})
			}
			return v3Reply(wmapi.V3OK, map[string]any{"edevs": rows}, req.Cmd)
		case "pools":
			rows := make([]any, 0, len(s.API.Pools))
			for i, p := range s.API.Pools {
				rows = append(rows, map[string]any{"id": i + 1, "url": p.URL, "status": strings.ToLower(p.Status), "account": p.User,
					"accepted": p.Accepted, "rejected": p.Rejected, "stratum-active": p.Active})
			}
			return v3Reply(wmapi.V3OK, map[string]any{"pools": rows}, req.Cmd)
		}
		return v3Reply(wmapi.V3InvalidCommand, nil, fmt.Sprintf("invalid param %q", param))
	case "get.device.info":
		m.mu.Lock()
		salt := m.v3salt
		m.mu.Unlock()
		errs := make([]map[string]any, 0, len(s.Errors))
		for _, e := range s.Errors {
			errs = append(errs, map[string]any{"code": e.Code, "reason": e.Reason, "time": e.Since.UTC().Format(time.DateTime)})
		}
		return v3Reply(wmapi.V3OK, map[string]any{
			"miner":      map[string]any{"type": s.Model, "miner-sn": s.API.Serial, "working": strconv.FormatBool(!s.PoweredOff), "power-limit-set": s.PowerLimitW},
			"system":     map[string]any{"api": "3.0.1", "fwversion": firmware, "platform": "H6OS"},
			"network":    map[string]any{"mac": s.API.MAC, "hostname": "WhatsMiner-" + m.id},
			"salt":       salt,
			"error-code": errs,
		}, req.Cmd)
	}
	return v3Reply(wmapi.V3InvalidCommand, nil, "invalid command")
}

// writeV3 checks account, ts and token of a write, then carries it out.
func (m *Miner) writeV3(remote string, req *v3Request) map[string]any {
	var param any
	_ = json.Unmarshal(req.Param, &param)
	w := Write{APIVersion: 3, Command: req.Cmd, Params: map[string]string{}, Remote: remote}
	if len(req.Param) > 0 {
		w.Params["param"] = string(req.Param)
		if req.Cmd == "set.miner.pools" {
			w.Params["param"] = maskPasswords(req.Param)
		}
	}
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	want := wmapi.V3Token(req.Cmd, m.password, m.v3salt, req.TS)
	m.mu.Unlock()
	reason := ""
	switch {
	case req.Account != m.fleet.cfg.Account:
		reason = fmt.Sprintf("unknown account %q", req.Account)
	case absDur(now.Sub(time.Unix(req.TS, 0))) > m.fleet.cfg.TSWindow:
		reason = "ts out of window"
	case req.Token != want:
		reason = "token mismatch"
	}
	if reason != "" {
		w.Reason = reason
		m.logWrite(w)
		return v3Reply(wmapi.V3PermissionDenied, nil, "permission denied: "+reason)
	}
	code, msg := m.doV3(req)
	w.Accepted = code == wmapi.V3OK
	w.Reason = map[bool]string{false: msg}[w.Accepted]
	m.logWrite(w)
	return v3Reply(code, nil, firstNonEmpty(msg, req.Cmd))
}

func (m *Miner) doV3(req *v3Request) (int, string) {
	var s string
	_ = json.Unmarshal(req.Param, &s)
	okOr := func(code int, msg string) (int, string) {
		if code == wmapi.CodeOK {
			return wmapi.V3OK, ""
		}
		return wmapi.V3Failed, msg
	}
	switch req.Cmd {
	case "set.system.reboot":
		return okOr(m.writeV2("reboot", nil))
	case "set.miner.service":
		switch s {
		case "stop":
			return okOr(m.writeV2("power_off", nil))
		case "start":
			return okOr(m.writeV2("power_on", nil))
		case "restart":
			return okOr(m.writeV2("reboot", nil))
		}
		return wmapi.V3Failed, fmt.Sprintf("invalid param %q", s)
	case "set.system.led":
		if s == "auto" {
			return okOr(m.setLED(false))
		}
		var led struct {
			Color string `json:"color"`
		}
		if json.Unmarshal(req.Param, &led) != nil || (led.Color != "red" && led.Color != "green") {
			return wmapi.V3Failed, "param must be \"auto\" or {color, period, duration, start}"
		}
		return okOr(m.setLED(true))
	case "set.miner.power_limit":
		var n json.Number
		if err := json.Unmarshal(req.Param, &n); err != nil {
			return wmapi.V3Failed, "param must be a number of watts"
		}
		return okOr(m.setLimit(n.String()))
	case "set.miner.pools":
		var ps []struct {
			Pool, Worker, Passwd string
		}
		if err := json.Unmarshal(req.Param, &ps); err != nil || len(ps) == 0 || len(ps) > 3 {
			return wmapi.V3Failed, "param must be 1 to 3 pools"
		}
		pools := make([]*pb.Pool, 0, len(ps))
		for i, p := range ps {
			pools = append(pools, &pb.Pool{Url: p.Pool, User: p.Worker, Password: p.Passwd, Priority: int32(i)})
		}
		return okOr(m.setPools(pools))
	}
	return wmapi.V3InvalidCommand, "invalid command"
}

func maskPasswords(raw json.RawMessage) string {
	var ps []map[string]any
	if json.Unmarshal(raw, &ps) != nil {
		return "(unreadable)"
	}
	for _, p := range ps {
		if _, ok := p["passwd"]; ok {
			p["passwd"] = "***"
		}
	}
	b, _ := json.Marshal(ps)
	return string(b)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// replyV3 writes one frame, with the miner's fault applied.
func (m *Miner) replyV3(c net.Conn, reply map[string]any) {
	body, _ := json.Marshal(reply)
	switch m.currentFault() {
	case FaultClose:
		return
	case FaultTruncated:
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(body)))
		_, _ = c.Write(append(hdr[:], body[:len(body)/2]...))
		return
	case FaultBadEnvelope:
		body = []byte("<html>not json</html>")
	case FaultOversized:
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], 1<<30)
		_, _ = c.Write(append(hdr[:], body...))
		return
	}
	_ = wmapi.WriteFrame(c, body)
}
