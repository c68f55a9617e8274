package faults

import (
	"bytes"
	"regexp"
	"strings"
)

// cgminerWrites are the CGMiner API commands that change a miner (miners/sim's write commands plus the
// stock ones it does not simulate).
var cgminerWrites = map[string]bool{
	"restart": true, "quit": true, "pause": true, "resume": true, "curtail": true,
	"addpool": true, "switchpool": true, "removepool": true, "enablepool": true, "disablepool": true,
	"poolpriority": true, "ascset": true, "pgaset": true, "setconfig": true,
}

var cgminerCommand = regexp.MustCompile(`"command"\s*:\s*"([^"]*)"`)

// CGMinerWrite is a Proxy.Match for the CGMiner API: it picks requests whose command (or any part of a
// joined "a+b" command) changes the miner.
func CGMinerWrite(b []byte) bool {
	m := cgminerCommand.FindSubmatch(b)
	if m == nil {
		return false
	}
	for _, part := range strings.Split(string(m[1]), "+") {
		if cgminerWrites[strings.ToLower(strings.TrimSpace(part))] {
			return true
		}
	}
	return false
}

// HTTPWrite is a Proxy.Match for the Antminer web CGI and the Proto rig REST API: it picks a chunk that
// starts a request which changes the miner (POST, PUT, PATCH, DELETE other than logging in, and the web
// CGI's reboot, which stock firmware also takes as GET).
func HTTPWrite(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return false
	}
	path, _, _ := bytes.Cut(rest, []byte(" "))
	switch string(method) {
	case "POST", "PUT", "PATCH", "DELETE":
		return !bytes.HasPrefix(path, []byte("/api/v1/auth/"))
	case "GET":
		return bytes.HasPrefix(path, []byte("/cgi-bin/reboot.cgi"))
	}
	return false
}
