package antminer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/internal/httpx"
)

// Driver speaks to one Antminer: the CGMiner API for reads, the web CGI for the rest. Like every
// miners.Driver it is used from one goroutine at a time.
type Driver struct {
	id   string
	api  *cgminer.Driver
	base url.URL
	cfg  Config
	web  *httpx.Client

	auth   digest
	info   SystemInfo
	infoAt time.Time
	intent intent
}

// intent is what this driver last did to the miner's power state, to tell a stop from a curtailment.
type intent uint8

const (
	intentNone    intent = iota
	intentStop           // sleep by STOP_MINING
	intentPartial        // a power-mode curtailment
)

var _ miners.Driver = (*Driver)(nil)

// New returns a driver for dev: Address is the CGMiner API (host:4028), WebAddress the web CGI (host:80;
// when empty, Address's host on port 80).
func New(dev *pb.Device, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	web := dev.GetWebAddress()
	if web == "" {
		host := dev.GetAddress()
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		if host == "" {
			return nil, fmt.Errorf("antminer: device %q has no address", dev.GetMinerId())
		}
		web = host + ":80"
		if cfg.Scheme == "https" {
			web = host + ":443"
		}
	}
	d := &Driver{
		id:   dev.GetMinerId(),
		api:  cgminer.New(dev, cfg.CGMiner),
		base: url.URL{Scheme: cfg.Scheme, Host: web},
		cfg:  cfg,
		web:  httpx.New(cfg.web(), accept, ErrSchemeMismatch),
		auth: digest{user: cfg.Username, pass: cfg.Password},
	}
	return d, nil
}

// Close releases idle connections. It is safe to call more than once.
func (d *Driver) Close() error {
	d.web.CloseIdleConnections()
	return d.api.Close()
}

// cgi calls one CGI with digest authentication. in, when not nil, is sent as JSON; out receives the reply.
// A firmware reply {"stats":"error"} is ErrRefused.
func (d *Driver) cgi(ctx context.Context, method, path string, in, out any) error {
	what := method + " " + path
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s: encode request: %w", what, err)
		}
	}
	u := d.base
	u.Path = path
	fresh := false // the challenge in use came from this call's previous 401
	var rep *httpx.Reply
	for attempt := 0; ; attempt++ {
		sent := d.auth.ch != nil
		var err error
		if rep, err = d.web.Do(ctx, method, &u, body, d.auth.authorization); err != nil {
			return err
		}
		if rep.Status != http.StatusUnauthorized {
			break
		}
		cs, schemes := parseChallenges(rep.Header.Values("WWW-Authenticate"))
		c, ok := pick(cs)
		switch {
		case !ok:
			return fmt.Errorf("%s: HTTP 401 without a usable Digest challenge (schemes offered: %q): %w", what, schemes, miners.ErrRefused)
		case sent && fresh && !c.stale, attempt >= 3:
			d.auth.ch = nil
			return fmt.Errorf("%s: digest authentication as %q refused: %w: %w", what, d.cfg.Username, ErrBadCredentials, miners.ErrRefused)
		}
		// First contact, a stale nonce, or a remembered nonce the miner forgot (it rebooted): sign afresh.
		d.auth.adopt(c)
		fresh = true
	}
	d.auth.nextNonce(rep.Header.Get("Authentication-Info"))
	if rep.Status < 200 || rep.Status > 299 {
		return statusErr(what, rep)
	}
	var st struct {
		Stats string `json:"stats"`
		Code  string `json:"code"`
		Msg   string `json:"msg"`
	}
	if json.Unmarshal(rep.Body, &st) == nil && strings.EqualFold(st.Stats, "error") {
		return fmt.Errorf("%s: firmware says %s %q: %w", what, st.Code, st.Msg, miners.ErrRefused)
	}
	if out != nil {
		return decodeJSON(what, rep, out)
	}
	return nil
}

// SystemInfo is what get_system_info.cgi tells.
type SystemInfo struct {
	Model    string // minertype, "Antminer S19j Pro"
	Serial   string // serinum
	MAC      string // macaddr, lowercased
	Firmware string // system_filesystem_version
	Hostname string
	IP       string
}

// SystemInfo reads get_system_info.cgi (uncached).
func (d *Driver) SystemInfo(ctx context.Context) (SystemInfo, error) {
	var raw struct {
		MinerType  string `json:"minertype"`
		MAC        string `json:"macaddr"`
		Hostname   string `json:"hostname"`
		IP         string `json:"ipaddress"`
		Filesystem string `json:"system_filesystem_version"`
		Serial     string `json:"serinum"`
	}
	if err := d.cgi(ctx, http.MethodGet, "/cgi-bin/get_system_info.cgi", nil, &raw); err != nil {
		return SystemInfo{}, fmt.Errorf("system info %s: %w", d.id, err)
	}
	return SystemInfo{Model: raw.MinerType, Serial: raw.Serial, MAC: strings.ToLower(raw.MAC), Firmware: raw.Filesystem,
		Hostname: raw.Hostname, IP: raw.IP}, nil
}

// minerConf is get_miner_conf.cgi, kept whole so a write sends back what it did not change.
type minerConf map[string]any

func (d *Driver) getConf(ctx context.Context) (minerConf, error) {
	var conf minerConf
	if err := d.cgi(ctx, http.MethodGet, "/cgi-bin/get_miner_conf.cgi", nil, &conf); err != nil {
		return nil, err
	}
	return conf, nil
}

// workMode reads bitmain-work-mode (a string, or a number on some firmware).
func (c minerConf) workMode() string {
	switch v := c["bitmain-work-mode"].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return fmt.Sprint(int(v))
	}
	return ""
}

func modeName(mode string) string {
	switch mode {
	case "0":
		return "normal"
	case "1":
		return "sleep"
	case "3":
		return "low"
	}
	return mode
}

// Poll reads the API, then overlays what the web CGI adds. Only an API failure fails the poll.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	t, err := d.api.Poll(ctx)
	if err != nil {
		return nil, err
	}
	if werr := d.pollWeb(ctx, t); werr != nil {
		t.PollError = "web cgi: " + werr.Error()
	}
	d.overlayState(t)
	return t, nil
}

func (d *Driver) pollWeb(ctx context.Context, t *pb.Telemetry) error {
	now := d.cfg.Clock.Now()
	if d.infoAt.IsZero() || now.Sub(d.infoAt) >= d.cfg.InfoTTL {
		info, err := d.SystemInfo(ctx)
		if err != nil {
			return err
		}
		d.info, d.infoAt = info, now
	}
	if t.Model == "" {
		t.Model = d.info.Model
	}
	if d.info.Serial != "" {
		t.Serial = d.info.Serial
	}
	if d.info.MAC != "" {
		t.Mac = d.info.MAC
	}
	if t.Firmware == "" {
		t.Firmware = d.info.Firmware
	}
	conf, err := d.getConf(ctx)
	if err != nil {
		return err
	}
	if m := conf.workMode(); m != "" {
		t.WorkMode = modeName(m)
	}
	return nil
}

// overlayState tells a stop from a curtailment by what this driver last did.
func (d *Driver) overlayState(t *pb.Telemetry) {
	switch t.WorkMode {
	case "sleep":
		t.State = pb.MinerState_MINER_STATE_CURTAILED
		if d.intent == intentStop {
			t.State = pb.MinerState_MINER_STATE_STOPPED
		}
	case "low":
		if d.intent == intentPartial {
			t.State = pb.MinerState_MINER_STATE_CURTAILED
		}
	}
}

// Hostname returns the miner's hostname as last read (empty before the first poll).
func (d *Driver) Hostname() string { return d.info.Hostname }
