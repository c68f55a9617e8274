package protorig

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WriteRecord is one write a rig received, accepted or not.
type WriteRecord struct {
	MinerID string
	At      time.Time // on Config.Clock
	Method  string
	Path    string
	// Params are the query parameters and the JSON body flattened to dotted keys ("0.url", "power_target_watts");
	// values of keys containing "password" or "pass" are replaced by "***".
	Params map[string]string
	Remote string // the caller's host:port
	// Principal is who the rig took the caller to be: "password", "jwt:<iss>", "pairing", or "" when
	// authentication failed.
	Principal string
	Status    int  // HTTP status answered
	Accepted  bool // Status is 2xx
}

func (m *Miner) record(r *http.Request, body []byte, status int, principal string) {
	params := map[string]string{}
	for k, vs := range r.URL.Query() {
		params[k] = strings.Join(vs, ",")
	}
	var v any
	if len(body) > 0 && json.Unmarshal(body, &v) == nil {
		flatten(params, "", v)
	} else if len(body) > 0 {
		params["_body"] = "(not JSON, " + strconv.Itoa(len(body)) + " bytes)"
	}
	rec := WriteRecord{
		MinerID: m.id, At: m.fleet.cfg.Clock.Now(), Method: r.Method, Path: r.URL.Path, Params: params,
		Remote: r.RemoteAddr, Principal: principal, Status: status, Accepted: status >= 200 && status < 300,
	}
	m.mu.Lock()
	m.log = append(m.log, rec)
	m.mu.Unlock()
}

func flatten(out map[string]string, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(out, join(k), e)
		}
	case []any:
		for i, e := range x {
			flatten(out, join(strconv.Itoa(i)), e)
		}
	default:
		key := prefix
		if key == "" {
			key = "_"
		}
		last := key[strings.LastIndexByte(key, '.')+1:]
		if strings.Contains(strings.ToLower(last), "pass") {
			out[key] = "***"
			return
		}
		switch y := x.(type) {
		case string:
			out[key] = y
		case nil:
			out[key] = "null"
		default:
			b, _ := json.Marshal(y)
			out[key] = string(b)
		}
	}
}
