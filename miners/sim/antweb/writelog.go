package antweb

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WriteRecord is one write CGI call a miner received, accepted or not.
type WriteRecord struct {
	MinerID string
	At      time.Time // on Config.Clock
	Method  string
	Path    string
	// Params are the query and the body (JSON flattened to dotted keys, "pools.0.url"; or form fields);
	// values of keys containing "pass" are replaced by "***".
	Params map[string]string
	Remote string // the caller's host:port
	// User is the digest username that authenticated, "" when authentication failed (AuthFailure says why).
	User        string
	AuthFailure string
	Status      int
	// Accepted: authenticated, 2xx and not {"stats":"error"}.
	Accepted bool
}

func (m *Miner) record(r *http.Request, body []byte, status int, ri *reqInfo) {
	params := map[string]string{}
	for k, vs := range r.URL.Query() {
		params[k] = strings.Join(vs, ",")
	}
	var v any
	switch {
	case len(body) == 0:
	case json.Unmarshal(body, &v) == nil:
		flatten(params, "", v)
	default:
		if form, err := url.ParseQuery(string(body)); err == nil && len(form) > 0 {
			for k, vs := range form {
				flatten(params, k, strings.Join(vs, ","))
			}
		} else {
			params["_body"] = "(unreadable, " + strconv.Itoa(len(body)) + " bytes)"
		}
	}
	rec := WriteRecord{
		MinerID: m.id, At: m.fleet.cfg.Clock.Now(), Method: r.Method, Path: r.URL.Path, Params: params,
		Remote: r.RemoteAddr, User: ri.user, AuthFailure: ri.authFailure, Status: status,
		Accepted: ri.user != "" && !ri.refused && status >= 200 && status < 300,
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
		if last := key[strings.LastIndexByte(key, '.')+1:]; strings.Contains(strings.ToLower(last), "pass") {
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
