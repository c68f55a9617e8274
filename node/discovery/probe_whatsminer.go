package discovery

import (
	"context"
	"fmt"
	"strings"
)

// probeWhatsminer identifies btminer's API v2 on a CGMiner port: it answers cgminer's {"command":...} with
// a btminer-style refusal ({"STATUS":"E","Code":14,...}, STATUS a string), and its own clear-text reads
// {"cmd":"get_version"} (firmware), {"cmd":"devdetails"} (model) and {"cmd":"get_miner_info"} (MAC,
// serial) need no password. Only get_version is required; the other two add identity.
func (r *run) probeWhatsminer(ctx context.Context, hostPort string, ev cgEvidence) cgEvidence {
	ver, err := r.apiRequest(ctx, hostPort, "get_version", []byte(`{"cmd":"get_version"}`))
	if err != nil {
		ev.err = err
		return ev
	}
	msg, _ := get(ver, "Msg").(map[string]any)
	if st, _ := get(ver, "STATUS").(string); st != "S" || msg == nil || (str(get(msg, "fw_ver")) == "" && str(get(msg, "api_ver")) == "") {
		ev.err = fmt.Errorf("btminer-style replies but get_version gives no version (%s): %w", snippetOf(ver), ErrNotMiner)
		return ev
	}
	ev.ok, ev.wm, ev.firmware = true, true, str(get(msg, "fw_ver"))
	if dd, err := r.apiRequest(ctx, hostPort, "devdetails", []byte(`{"cmd":"devdetails"}`)); err == nil {
		for _, o := range objects(get(dd, "DEVDETAILS")) {
			if m := strings.TrimSpace(str(get(o, "Model"))); m != "" {
				ev.model = "WhatsMiner " + m
				break
			}
		}
	}
	if mi, err := r.apiRequest(ctx, hostPort, "get_miner_info", []byte(`{"cmd":"get_miner_info","info":"mac,minersn"}`)); err == nil {
		if m, ok := get(mi, "Msg").(map[string]any); ok {
			ev.mac, ev.serial = str(get(m, "mac")), str(get(m, "minersn"))
		}
	}
	return ev
}

// snippetOf shows a parsed reply briefly, for errors.
func snippetOf(doc map[string]any) string {
	return snippet([]byte(fmt.Sprint(doc)))
}
