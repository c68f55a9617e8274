package antweb

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// routes builds the fleet's router, shared by every miner. Every CGI needs digest authentication.
func routes() http.Handler {
	mux := http.NewServeMux()
	cgi := func(pattern string, h httpsim.Method[*Miner]) {
		httpsim.Handle(mux, pattern, h, (*Miner).requireDigest)
	}
	cgi("GET /cgi-bin/get_system_info.cgi", (*Miner).systemInfo)
	cgi("GET /cgi-bin/get_miner_conf.cgi", (*Miner).getConf)
	cgi("POST /cgi-bin/set_miner_conf.cgi", (*Miner).setConf)
	cgi("GET /cgi-bin/reboot.cgi", (*Miner).reboot)
	cgi("POST /cgi-bin/reboot.cgi", (*Miner).reboot)
	cgi("POST /cgi-bin/blink.cgi", (*Miner).setBlink)
	cgi("GET /cgi-bin/blink.cgi", (*Miner).getBlink)
	cgi("GET /cgi-bin/get_blink_status.cgi", (*Miner).getBlink)
	cgi("POST /cgi-bin/upgrade.cgi", (*Miner).upgrade)
	cgi("POST /cgi-bin/passwd.cgi", (*Miner).passwd)
	cgi("GET /cgi-bin/get_kernel_log.cgi", (*Miner).kernelLog)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html><body><h1>404 Not Found</h1></body></html>\n")
	})
	return mux
}

// isWrite: the CGIs that change the miner. A GET of reboot.cgi is a write, as stock firmware's UI does it.
func isWrite(r *http.Request) bool {
	switch r.URL.Path {
	case "/cgi-bin/set_miner_conf.cgi", "/cgi-bin/blink.cgi", "/cgi-bin/upgrade.cgi", "/cgi-bin/passwd.cgi":
		return r.Method == http.MethodPost
	case "/cgi-bin/reboot.cgi":
		return true
	}
	return false
}

// writeJSON answers with a Content-Length, so a reply flushed before a reboot is whole. Stock firmware
// labels its JSON text/plain; so does the simulator.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// stats answers in the firmware's {"stats","code","msg"} shape.
func stats(w http.ResponseWriter, code int, st, c, msg string) {
	writeJSON(w, code, map[string]string{"stats": st, "code": c, "msg": msg})
}

func refuse(w http.ResponseWriter, r *http.Request, code int, c, msg string) {
	httpsim.NoteOf(r).Refused = true
	stats(w, code, "error", c, msg)
}

func (m *Miner) systemInfo(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	host, _, _ := net.SplitHostPort(m.Addr())
	writeJSON(w, http.StatusOK, map[string]string{
		"minertype":                 s.API.Model,
		"nettype":                   "DHCP",
		"netdevice":                 "eth0",
		"macaddr":                   strings.ToUpper(s.API.MAC),
		"hostname":                  s.Hostname,
		"ipaddress":                 host,
		"netmask":                   "255.0.0.0",
		"gateway":                   "127.0.0.1",
		"dnsservers":                "127.0.0.1",
		"system_mode":               "GNU/Linux",
		"system_kernel_version":     "Linux 4.9.113 #1 SMP PREEMPT",
		"system_filesystem_version": s.API.Firmware,
		"firmware_type":             "Release",
		"serinum":                   s.API.Serial,
	})
}

func (m *Miner) getConf(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	pools := make([]map[string]string, 3)
	for i := range pools {
		pools[i] = map[string]string{"url": "", "user": "", "pass": ""}
		if i < len(s.Pools) {
			pools[i] = map[string]string{"url": s.Pools[i].URL, "user": s.Pools[i].User, "pass": s.Pools[i].Pass}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"pools":              pools,
		"api-listen":         true,
		"api-network":        true,
		"api-groups":         "A:stats:pools:devs:summary:version",
		"api-allow":          "A:0/0,W:*",
		"bitmain-fan-ctrl":   s.FanCtrl,
		"bitmain-fan-pwm":    strconv.Itoa(s.FanPWM),
		"bitmain-use-vil":    true,
		"bitmain-freq":       "675",
		"bitmain-voltage":    "1400",
		"bitmain-ccdelay":    "0",
		"bitmain-pwth":       "0",
		"bitmain-work-mode":  s.WorkMode,
		"bitmain-freq-level": "100",
	})
}

// workModeParam reads "miner-mode" (number or string, newer firmware) or else "bitmain-work-mode".
func workModeParam(conf map[string]json.RawMessage) (string, bool, error) {
	raw, ok := conf["miner-mode"]
	if !ok {
		if raw, ok = conf["bitmain-work-mode"]; !ok {
			return "", false, nil
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", true, fmt.Errorf("work mode %s is neither a string nor a number", raw)
		}
		s = n.String()
	}
	switch s = strings.TrimSpace(s); s {
	case modeNormal, modeSleep, modeLowPower:
		return s, true, nil
	}
	return "", true, fmt.Errorf("work mode %q is not 0 (normal), 1 (sleep) or 3 (low power)", s)
}

func (m *Miner) setConf(w http.ResponseWriter, r *http.Request) {
	var conf map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&conf); err != nil {
		refuse(w, r, http.StatusBadRequest, "M001", "invalid JSON: "+err.Error())
		return
	}
	mode, hasMode, err := workModeParam(conf)
	if err != nil {
		refuse(w, r, http.StatusBadRequest, "M002", err.Error())
		return
	}
	fan, err := fanParams(conf)
	if err != nil {
		refuse(w, r, http.StatusBadRequest, "M007", err.Error())
		return
	}
	var pools []*pb.Pool
	raw, hasPools := conf["pools"]
	if hasPools {
		var in []struct {
			URL  string `json:"url"`
			User string `json:"user"`
			Pass string `json:"pass"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			refuse(w, r, http.StatusBadRequest, "M003", "pools: "+err.Error())
			return
		}
		for _, p := range in {
			if strings.TrimSpace(p.URL) != "" {
				pools = append(pools, &pb.Pool{Url: p.URL, User: p.User, Password: p.Pass, Priority: int32(len(pools))})
			}
		}
		if len(pools) == 0 || len(pools) > 3 {
			refuse(w, r, http.StatusBadRequest, "M004", fmt.Sprintf("between 1 and 3 pools with a url, got %d", len(pools)))
			return
		}
	}
	if hasPools {
		if err := m.execute(r.Context(), &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools}); err != nil {
			refuse(w, r, http.StatusInternalServerError, "M005", "bmminer did not take the pools: "+err.Error())
			return
		}
		m.mu.Lock()
		for _, p := range pools {
			m.passwords[p.Url+"\x00"+p.User] = p.Password
		}
		m.mu.Unlock()
	}
	if hasMode {
		sleeping := m.api.Snapshot().Sleeping
		var err error
		switch {
		case mode == modeSleep && !sleeping:
			err = m.execute(r.Context(), &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL})
		case mode != modeSleep && sleeping:
			err = m.execute(r.Context(), &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
		}
		if err != nil {
			refuse(w, r, http.StatusInternalServerError, "M006", "bmminer did not take the work mode: "+err.Error())
			return
		}
		m.mu.Lock()
		m.workMode = mode
		m.mu.Unlock()
	}
	m.applyFan(fan)
	stats(w, http.StatusOK, "success", "M000", "OK!")
}

// reboot restarts bmminer through its API, answers, then takes the web side down for RebootDuration.
func (m *Miner) reboot(w http.ResponseWriter, r *http.Request) {
	if err := m.execute(r.Context(), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}); err != nil {
		refuse(w, r, http.StatusInternalServerError, "R001", "reboot failed: "+err.Error())
		return
	}
	m.web.Reboot(w, func(w http.ResponseWriter) { stats(w, http.StatusOK, "success", "R000", "reboot") }, m.bootDone)
}

func (m *Miner) setBlink(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Blink *bool `json:"blink"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Blink == nil {
		refuse(w, r, http.StatusBadRequest, "B001", `body must be {"blink": true|false}`)
		return
	}
	m.mu.Lock()
	m.blink = *in.Blink
	m.mu.Unlock()
	msg := "blink off"
	if *in.Blink {
		msg = "blink on"
	}
	stats(w, http.StatusOK, "success", "B000", msg)
}

func (m *Miner) getBlink(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	b := m.blink
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"blink": b})
}
