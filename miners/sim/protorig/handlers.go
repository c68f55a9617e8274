package protorig

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// routes builds the fleet's router, shared by every rig.
func routes() http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, h httpsim.Method[*Miner]) { httpsim.Handle(mux, pattern, h, nil) }
	authed := func(pattern string, h httpsim.Method[*Miner]) { httpsim.Handle(mux, pattern, h, (*Miner).requireAuth) }

	open("POST /api/v1/auth/login", (*Miner).login)
	open("POST /api/v1/auth/refresh", (*Miner).refresh)
	authed("POST /api/v1/auth/logout", (*Miner).logout)
	open("GET /api/v1/pairing/info", (*Miner).pairingInfo)
	open("POST /api/v1/pairing/auth-key", (*Miner).setAuthKey) // authenticated on rotation, see setAuthKey
	authed("DELETE /api/v1/pairing/auth-key", (*Miner).clearAuthKey)

	open("GET /api/v1/system", (*Miner).systemInfo)
	open("GET /api/v1/system/status", (*Miner).systemStatus)
	open("GET /api/v1/network", (*Miner).network)
	open("GET /api/v1/hashboards", (*Miner).hashboards)

	authed("GET /api/v1/pools", (*Miner).listPools)
	authed("POST /api/v1/pools", (*Miner).createPools)
	authed("GET /api/v1/pools/{id}", (*Miner).getPool)
	authed("PUT /api/v1/pools/{id}", (*Miner).editPool)
	authed("DELETE /api/v1/pools/{id}", (*Miner).deletePool)

	authed("GET /api/v1/mining", (*Miner).miningStatus)
	authed("GET /api/v1/mining/target", (*Miner).getTarget)
	authed("PUT /api/v1/mining/target", (*Miner).putTarget)
	authed("POST /api/v1/mining/start", (*Miner).startMining)
	authed("POST /api/v1/mining/stop", (*Miner).stopMining)
	authed("POST /api/v1/system/reboot", (*Miner).reboot)
	authed("POST /api/v1/system/locate", (*Miner).locate)
	authed("PUT /api/v1/system/update", (*Miner).putUpdate)

	authed("GET /api/v1/telemetry", (*Miner).telemetry)
	authed("GET /api/v1/cooling", (*Miner).cooling)
	authed("GET /api/v1/errors", (*Miner).errorList)
	authed("GET /api/v1/curtailment/status", (*Miner).curtailmentStatus)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		message(w, http.StatusNotFound, "not found (or not simulated): "+r.URL.Path)
	})
	return mux
}

// isWrite: the requests the write log records, every one but reads and the login/refresh exchanges.
func isWrite(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead &&
		r.URL.Path != "/api/v1/auth/login" && r.URL.Path != "/api/v1/auth/refresh"
}

// writeJSON answers with a Content-Length, so a reply flushed before the rig goes down (reboot) is whole.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"message":"encode reply"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func message(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func errorResponse(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": errCode, "message": msg}})
}

func decode(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

// --- authentication ---

// authenticate checks the bearer token: the rig's own HS256 access token, or an EdDSA JWT signed by the
// paired key. It returns who the caller is.
func (m *Miner) authenticate(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", errors.New("missing bearer token")
	}
	hdr, _, _, _, err := splitJWT(tok)
	if err != nil {
		return "", err
	}
	cfg := m.fleet.cfg
	m.mu.Lock()
	defer m.mu.Unlock()
	now := cfg.Clock.Now()
	if hdr.Alg == "EdDSA" {
		c, err := verifyEdDSA(tok, m.rig.authKey, m.rig.serial, now, cfg.JWTMaxTTL, cfg.JWTLeeway)
		if err != nil {
			return "", err
		}
		return "jwt:" + c.Iss, nil
	}
	if _, err := verifyHS256(tok, m.rig.tokenSecret, "access", now, m.rig.revoked); err != nil {
		return "", err
	}
	return "password", nil
}

func (m *Miner) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := m.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			message(w, http.StatusUnauthorized, "unauthorized: "+err.Error())
			return
		}
		httpsim.NoteOf(r).Principal = who
		next(w, r)
	}
}

func (m *Miner) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	cfg := m.fleet.cfg
	m.mu.Lock()
	ok := req.Password == m.rig.password
	secret := m.rig.tokenSecret
	m.mu.Unlock()
	if !ok {
		message(w, http.StatusUnauthorized, "invalid password")
		return
	}
	now := cfg.Clock.Now()
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token":  mintHS256(secret, "access", now, cfg.AccessTokenTTL),
		"refresh_token": mintHS256(secret, "refresh", now, refreshTokenTTL),
	})
}

func (m *Miner) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decode(r, &req); err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	cfg := m.fleet.cfg
	now := cfg.Clock.Now()
	m.mu.Lock()
	_, err := verifyHS256(req.RefreshToken, m.rig.tokenSecret, "refresh", now, m.rig.revoked)
	secret := m.rig.tokenSecret
	m.mu.Unlock()
	if err != nil {
		message(w, http.StatusUnauthorized, "invalid refresh token: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_token": mintHS256(secret, "access", now, cfg.AccessTokenTTL)})
}

func (m *Miner) logout(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = decode(r, &req)
	m.mu.Lock()
	for _, tok := range []string{req.AccessToken, req.RefreshToken} {
		if _, c, _, _, err := splitJWT(tok); err == nil && c.Jti != "" {
			m.rig.revoked[c.Jti] = true
		}
	}
	m.mu.Unlock()
	message(w, http.StatusOK, "logged out")
}

func (m *Miner) pairingInfo(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"mac": m.rig.mac, "cb_sn": m.rig.serial})
}

// setAuthKey pairs: open while no key is set, authenticated (by password token or the current key) after.
func (m *Miner) setAuthKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PublicKey string `json:"public_key"`
	}
	if err := decode(r, &req); err != nil {
		errorResponse(w, http.StatusBadRequest, "INCORRECT_ARGS", err.Error())
		return
	}
	der, err := base64.StdEncoding.DecodeString(req.PublicKey)
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "INVALID_KEY", "public_key is not base64: "+err.Error())
		return
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	key, ok := parsed.(ed25519.PublicKey)
	if err != nil || !ok {
		errorResponse(w, http.StatusBadRequest, "INVALID_KEY", "public_key is not an ed25519 SPKI key")
		return
	}
	m.mu.Lock()
	paired := m.rig.authKey != nil
	m.mu.Unlock()
	who := "pairing"
	if paired {
		if who, err = m.authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			message(w, http.StatusUnauthorized, "already paired; rotating the key needs authentication: "+err.Error())
			return
		}
	}
	httpsim.NoteOf(r).Principal = who
	m.mu.Lock()
	m.rig.authKey = key
	m.mu.Unlock()
	message(w, http.StatusOK, "Auth key set successfully")
}

func (m *Miner) clearAuthKey(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.rig.authKey = nil
	m.mu.Unlock()
	message(w, http.StatusOK, "Auth key cleared")
}

// --- system information (no authentication) ---

func (m *Miner) systemInfo(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	writeJSON(w, http.StatusOK, map[string]any{"system-info": map[string]any{
		"product_name":     "Proto Rig",
		"manufacturer":     "Proto",
		"model":            s.Model,
		"os":               map[string]any{"name": "BTCM Linux Distribution", "version": s.Firmware, "variant": "release"},
		"mining_driver_sw": map[string]string{"name": "mcdd", "version": s.Firmware},
		"web_server":       map[string]string{"name": "miner-api-server", "version": s.Firmware},
		"uptime_seconds":   s.UptimeS,
		"board":            "C3",
		"soc":              "STM32MP157F",
		"cb_sn":            s.Serial,
	}})
}

func (m *Miner) systemStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"onboarded": true, "password_set": true})
}

func (m *Miner) network(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	host, _, _ := strings.Cut(m.Addr(), ":")
	writeJSON(w, http.StatusOK, map[string]any{"network-info": map[string]any{
		"mac": s.MAC, "dhcp": true, "ip": host, "netmask": "255.0.0.0", "gateway": "127.0.0.1", "hostname": s.Hostname,
	}})
}

func (m *Miner) hashboards(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	var hbs []map[string]any
	for _, b := range s.Boards {
		hbs = append(hbs, map[string]any{
			"hb_sn": b.Serial, "board": "B4_192", "mining_asic": "MC2", "mining_asic_count": b.Asics,
			"temp_sensor_count": 3, "slot": b.Index + 1, "port": b.Index, "api_version": "1.0",
			"firmware": map[string]string{"version": s.Firmware, "build": "release"},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"hashboards-info": hbs})
}

// --- pools ---

type poolJSON struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Priority int    `json:"priority"`
	URL      string `json:"url"`
	User     string `json:"user"`
	Status   string `json:"status"`
	Protocol string `json:"protocol"`
	Accepted int64  `json:"accepted"`
	Rejected int64  `json:"rejected"`
}

func toPoolJSON(p Pool) poolJSON {
	proto := "Stratum V1"
	if strings.HasPrefix(p.URL, "stratum2") {
		proto = "Stratum V2"
	}
	return poolJSON{ID: p.ID, Name: p.Name, Priority: p.Priority, URL: p.URL, User: p.User, Status: p.Status,
		Protocol: proto, Accepted: p.Accepted, Rejected: p.Rejected}
}

type poolIn struct {
	Name     *string `json:"name"`
	URL      *string `json:"url"`
	Username *string `json:"username"`
	Password *string `json:"password"`
	Priority *int    `json:"priority"`
}

func validPoolURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("pool url %q: %w", s, err)
	}
	switch u.Scheme {
	case "stratum+tcp", "stratum+ssl", "stratum2+tcp":
	default:
		return fmt.Errorf("pool url %q: scheme must be stratum+tcp, stratum+ssl or stratum2+tcp", s)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("pool url %q: needs host:port", s)
	}
	return nil
}

func (m *Miner) listPools(w http.ResponseWriter, r *http.Request) {
	out := []poolJSON{}
	for _, p := range m.Snapshot().Pools {
		out = append(out, toPoolJSON(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"pools": out})
}

func (m *Miner) createPools(w http.ResponseWriter, r *http.Request) {
	var in []poolIn
	if err := decode(r, &in); err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(in) == 0 || len(in) > 3 {
		message(w, http.StatusUnprocessableEntity, fmt.Sprintf("between 1 and 3 pools, got %d", len(in)))
		return
	}
	var ps []Pool
	seen := map[int]bool{}
	for i, p := range in {
		if p.URL == nil {
			message(w, http.StatusUnprocessableEntity, fmt.Sprintf("pool %d: url is required", i))
			return
		}
		if err := validPoolURL(*p.URL); err != nil {
			message(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		np := Pool{Priority: i, URL: *p.URL}
		if p.Priority != nil {
			np.Priority = *p.Priority
		}
		if np.Priority < 0 || seen[np.Priority] {
			message(w, http.StatusUnprocessableEntity, fmt.Sprintf("pool %d: priority %d is negative or duplicated", i, np.Priority))
			return
		}
		seen[np.Priority] = true
		if p.Name != nil {
			np.Name = *p.Name
		}
		if p.Username != nil {
			np.User = *p.Username
		}
		if p.Password != nil {
			np.Password = *p.Password
		}
		ps = append(ps, np)
	}
	m.mu.Lock()
	wasHashing := m.rig.hashing()
	m.rig.setPools(ps)
	if !wasHashing && m.rig.hashing() {
		m.rig.miningSince = m.fleet.cfg.Clock.Now()
	}
	m.mu.Unlock()
	message(w, http.StatusOK, "Pools configured")
}

func (m *Miner) poolIndex(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		message(w, http.StatusBadRequest, "pool id must be an integer")
		return 0, false
	}
	m.mu.Lock()
	n := len(m.rig.pools)
	m.mu.Unlock()
	if id < 0 || id >= n {
		message(w, http.StatusUnprocessableEntity, fmt.Sprintf("no pool with id %d", id))
		return 0, false
	}
	return id, true
}

func (m *Miner) getPool(w http.ResponseWriter, r *http.Request) {
	id, ok := m.poolIndex(w, r)
	if !ok {
		return
	}
	ps := m.Snapshot().Pools
	if id >= len(ps) {
		message(w, http.StatusUnprocessableEntity, fmt.Sprintf("no pool with id %d", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pool": toPoolJSON(ps[id])})
}

func (m *Miner) editPool(w http.ResponseWriter, r *http.Request) {
	id, ok := m.poolIndex(w, r)
	if !ok {
		return
	}
	var in poolIn
	if err := decode(r, &in); err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.URL != nil {
		if err := validPoolURL(*in.URL); err != nil {
			message(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id >= len(m.rig.pools) {
		message(w, http.StatusUnprocessableEntity, fmt.Sprintf("no pool with id %d", id))
		return
	}
	ps := slices.Clone(m.rig.pools)
	p := &ps[id]
	if in.Priority != nil {
		for j, q := range ps {
			if j != id && q.Priority == *in.Priority {
				message(w, http.StatusUnprocessableEntity, fmt.Sprintf("priority %d is taken", *in.Priority))
				return
			}
		}
		p.Priority = *in.Priority
	}
	if in.Name != nil {
		p.Name = *in.Name
	}
	if in.URL != nil {
		p.URL = *in.URL
	}
	if in.Username != nil {
		p.User = *in.Username
	}
	if in.Password != nil {
		p.Password = *in.Password
	}
	m.rig.setPools(ps)
	message(w, http.StatusOK, "Pool updated")
}

func (m *Miner) deletePool(w http.ResponseWriter, r *http.Request) {
	id, ok := m.poolIndex(w, r)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id < len(m.rig.pools) {
		m.rig.setPools(slices.Delete(slices.Clone(m.rig.pools), id, id+1))
	}
	message(w, http.StatusOK, "Pool deleted")
}

// --- mining ---

func (m *Miner) miningStatus(w http.ResponseWriter, r *http.Request) {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	s := m.rig.snapshot(m.id, now)
	miningUp := int64(0)
	if m.rig.hashing() {
		miningUp = int64(now.Sub(m.rig.miningSince) / time.Second)
	}
	m.mu.Unlock()
	hbMining := 0
	var avgHB float64
	for _, b := range s.Boards {
		if b.HashrateTHs > 0 {
			hbMining++
		}
		avgHB += b.AvgC / float64(len(s.Boards))
	}
	writeJSON(w, http.StatusOK, map[string]any{"mining-status": map[string]any{
		"status":               s.Status,
		"mining_uptime_s":      miningUp,
		"reboot_uptime_s":      s.UptimeS,
		"average_hashrate_ghs": s.HashrateTHs * 1000,
		"ideal_hashrate_ghs":   s.IdealHashrateTHs * 1000,
		"power_usage_watts":    s.PowerW,
		"power_target_watts":   s.PowerTargetW,
		"power_efficiency_jth": s.EfficiencyJTH,
		"average_hb_temp_c":    round2(avgHB),
		"hw_errors":            0,
		"hashboards_installed": len(s.Boards),
		"hashboards_mining":    hbMining,
	}})
}

func targetJSON(s State) map[string]any {
	return map[string]any{
		"power_target_watts":         s.PowerTargetW,
		"performance_mode":           s.PerformanceMode,
		"balance_bays":               false,
		"power_target_min_watts":     s.PowerTargetMinW,
		"power_target_max_watts":     s.PowerTargetMaxW,
		"default_power_target_watts": s.DefaultPowerTargetW,
		"hash_on_disconnect":         false,
	}
}

func (m *Miner) getTarget(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, targetJSON(m.Snapshot()))
}

func (m *Miner) putTarget(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PowerTargetWatts *int    `json:"power_target_watts"`
		PerformanceMode  *string `json:"performance_mode"`
	}
	if err := decode(r, &in); err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	m.mu.Lock()
	if in.PowerTargetWatts != nil && (*in.PowerTargetWatts < m.rig.minTarget || *in.PowerTargetWatts > m.rig.maxTarget) {
		msg := fmt.Sprintf("power_target_watts %d is outside %d..%d", *in.PowerTargetWatts, m.rig.minTarget, m.rig.maxTarget)
		m.mu.Unlock()
		message(w, http.StatusUnprocessableEntity, msg)
		return
	}
	if in.PerformanceMode != nil && *in.PerformanceMode != "MaximumHashrate" && *in.PerformanceMode != "Efficiency" {
		m.mu.Unlock()
		message(w, http.StatusUnprocessableEntity, "performance_mode must be MaximumHashrate or Efficiency")
		return
	}
	if in.PowerTargetWatts != nil {
		m.rig.target = *in.PowerTargetWatts
	}
	if in.PerformanceMode != nil {
		m.rig.perfMode = *in.PerformanceMode
	}
	s := m.rig.snapshot(m.id, m.fleet.cfg.Clock.Now())
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, targetJSON(s))
}

func (m *Miner) startMining(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	was := m.rig.hashing()
	m.rig.stopped = false
	if !was && m.rig.hashing() {
		m.rig.miningSince = m.fleet.cfg.Clock.Now()
	}
	m.mu.Unlock()
	message(w, http.StatusAccepted, "Mining start accepted")
}

func (m *Miner) stopMining(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.rig.stopped = true
	m.mu.Unlock()
	message(w, http.StatusAccepted, "Mining stop accepted")
}

// reboot answers 202, then takes the rig down for Config.RebootDuration on the injected clock.
func (m *Miner) reboot(w http.ResponseWriter, r *http.Request) {
	m.web.Reboot(w, func(w http.ResponseWriter) { message(w, http.StatusAccepted, "System reboot accepted") }, m.bootDone)
}

// bootDone is the end of a reboot, before the rig listens again: uptime starts over, the LED is off.
func (m *Miner) bootDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.fleet.cfg.Clock.Now()
	m.rig.bootedAt, m.rig.miningSince = now, now
	m.rig.locateUntil = time.Time{}
}

func (m *Miner) locate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	secs, enable := 0, true
	if v := q.Get("led_on_time"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			message(w, http.StatusBadRequest, "led_on_time must be an integer")
			return
		}
		secs = max(n, 0)
	}
	if v := q.Get("enable"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			message(w, http.StatusBadRequest, "enable must be true or false")
			return
		}
		enable = b
	}
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	switch {
	case !enable:
		m.rig.locateUntil = time.Time{}
	case secs == 0:
		m.rig.locateUntil = forever
	default:
		m.rig.locateUntil = now.Add(time.Duration(secs) * time.Second)
	}
	m.mu.Unlock()
	message(w, http.StatusAccepted, "Locate accepted")
}

// --- telemetry ---

type metric struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func (m *Miner) telemetry(w http.ResponseWriter, r *http.Request) {
	levels := map[string]bool{}
	for _, v := range r.URL.Query()["level"] {
		for _, l := range strings.Split(v, ",") {
			switch l = strings.TrimSpace(l); l {
			case "miner", "hashboard", "psu", "asic":
				levels[l] = true
			case "":
			default:
				message(w, http.StatusBadRequest, "unknown level "+strconv.Quote(l))
				return
			}
		}
	}
	if len(levels) == 0 {
		levels["miner"] = true
	}
	now := m.fleet.cfg.Clock.Now()
	s := m.Snapshot()
	out := map[string]any{"timestamp": now.UTC().Format(time.RFC3339)}
	if levels["miner"] {
		out["miner"] = map[string]metric{
			"hashrate":    {s.HashrateTHs, "TH/s"},
			"temperature": {s.TempC, "°C"},
			"power":       {s.PowerW, "W"},
			"efficiency":  {s.EfficiencyJTH, "J/TH"},
		}
	}
	if levels["hashboard"] || levels["asic"] {
		var hbs []map[string]any
		for _, b := range s.Boards {
			eff := 0.0
			if b.HashrateTHs > 0 {
				eff = round2(b.PowerW / b.HashrateTHs)
			}
			hb := map[string]any{
				"index": b.Index, "serial_number": b.Serial,
				"hashrate":    metric{b.HashrateTHs, "TH/s"},
				"temperature": map[string]any{"unit": "°C", "inlet": b.InletC, "outlet": b.OutletC, "average": b.AvgC},
				"power":       metric{b.PowerW, "W"},
				"efficiency":  metric{eff, "J/TH"},
				"voltage":     metric{12.1, "V"},
				"current":     metric{round2(b.PowerW / 12.1), "A"},
			}
			if levels["asic"] {
				hr, tc := make([]float64, b.Asics), make([]float64, b.Asics)
				for i := range hr {
					hr[i] = round2(b.HashrateTHs / float64(b.Asics))
					tc[i] = b.OutletC + 5
				}
				hb["asics"] = map[string]any{"hashrate": map[string]any{"unit": "TH/s", "values": hr},
					"temperature": map[string]any{"unit": "°C", "values": tc}}
			}
			hbs = append(hbs, hb)
		}
		out["hashboards"] = hbs
	}
	if levels["psu"] {
		out["psus"] = []map[string]any{{
			"index": 0, "serial_number": "PSU" + s.Serial,
			"voltage":     map[string]any{"unit": "V", "input": 240.0, "output": 12.1},
			"current":     map[string]any{"unit": "A", "input": round2(s.PowerW / 0.96 / 240), "output": round2(s.PowerW / 12.1)},
			"power":       map[string]any{"unit": "W", "input": round2(s.PowerW / 0.96), "output": s.PowerW},
			"temperature": map[string]any{"unit": "°C", "hotspot": 60.0, "ambient": 35.0, "average": 47.5},
		}}
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Miner) cooling(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	var fans []map[string]int
	pct := 0
	for _, f := range s.Fans {
		fans = append(fans, map[string]int{"slot": f.Slot, "rpm": f.RPM, "percentage": f.Percent})
		pct = f.Percent
	}
	writeJSON(w, http.StatusOK, map[string]any{"cooling-status": map[string]any{
		"fan_mode": "Auto", "speed_percentage": pct, "target_temperature_c": 60.0, "fans": fans,
	}})
}

func (m *Miner) errorList(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, e := range m.Snapshot().Errors {
		out = append(out, map[string]any{"source": e.Source, "slot": e.Slot, "error_code": e.Code,
			"timestamp": e.Timestamp, "message": e.Message})
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Miner) curtailmentStatus(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	var reason, last any
	if s.Curtailed {
		reason, last = "target_off", "stop_mining"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"active": s.Curtailed, "known": true, "fail_policy": "closed", "provider": nil, "reason": reason,
		"target": nil, "last_command": last, "restore_pending": s.Curtailed,
		"updated_at": m.fleet.cfg.Clock.Now().UTC().Format(time.RFC3339),
	})
}
