package proto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// num is a JSON number that also accepts a numeric string and null (absent). Rigs are not known to send
// strings, but a driver must not fail a whole poll over one quoted number.
type num struct {
	v  float64
	ok bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = num{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*n = num{}
			return nil
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*n = num{v: v, ok: true}
	return nil
}

type metricValue struct {
	Value num    `json:"value"`
	Unit  string `json:"unit"`
}

// ths converts a hashrate metric to TH/s.
func (m metricValue) ths() float64 {
	switch strings.ToUpper(strings.TrimSpace(m.Unit)) {
	case "GH/S":
		return m.Value.v / 1000
	case "PH/S":
		return m.Value.v * 1000
	case "MH/S":
		return m.Value.v / 1e6
	}
	return m.Value.v
}

type telemetryReply struct {
	Miner *struct {
		Hashrate    metricValue `json:"hashrate"`
		Temperature metricValue `json:"temperature"`
		Power       metricValue `json:"power"`
		Efficiency  metricValue `json:"efficiency"`
	} `json:"miner"`
	Hashboards []struct {
		Index       num         `json:"index"`
		Serial      string      `json:"serial_number"`
		Hashrate    metricValue `json:"hashrate"`
		Temperature struct {
			Inlet   num `json:"inlet"`
			Outlet  num `json:"outlet"`
			Average num `json:"average"`
		} `json:"temperature"`
	} `json:"hashboards"`
}

type miningReply struct {
	Status struct {
		Status         string `json:"status"`
		RebootUptimeS  num    `json:"reboot_uptime_s"`
		AvgHashrateGHs num    `json:"average_hashrate_ghs"`
		PowerUsageW    num    `json:"power_usage_watts"`
		PowerTargetW   num    `json:"power_target_watts"`
		EfficiencyJTH  num    `json:"power_efficiency_jth"`
	} `json:"mining-status"`
}

type poolsReply struct {
	Pools []struct {
		ID       num    `json:"id"`
		Priority num    `json:"priority"`
		URL      string `json:"url"`
		User     string `json:"user"`
		Status   string `json:"status"`
		Accepted num    `json:"accepted"`
		Rejected num    `json:"rejected"`
	} `json:"pools"`
}

type coolingReply struct {
	Cooling struct {
		Fans []struct {
			RPM num `json:"rpm"`
		} `json:"fans"`
	} `json:"cooling-status"`
}

type errorEntry struct {
	Source  string `json:"source"`
	Slot    num    `json:"slot"`
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e errorEntry) String() string {
	where := e.Source
	if e.Slot.ok {
		where += " " + strconv.Itoa(int(e.Slot.v))
	}
	return strings.TrimSpace(fmt.Sprintf("%s: %s: %s", where, e.Code, e.Message))
}

// rigInfo is the rarely changing part, cached for Config.InfoTTL.
type rigInfo struct {
	model, firmware, serial, mac string
	hostname                     string
	asics                        map[string]int32 // hashboard serial → ASIC count
}

// Poll reads one sample.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	start := time.Now()
	t, err := d.poll(ctx)
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", d.id, err)
	}
	t.ObservedAtUnixMs = d.cfg.Clock.Now().UnixMilli()
	t.PollLatencyUs = time.Since(start).Microseconds()
	return t, nil
}

func (d *Driver) poll(ctx context.Context) (*pb.Telemetry, error) {
	t := &pb.Telemetry{MinerId: d.id}
	if err := d.refreshInfo(ctx); err != nil {
		return nil, err
	}
	t.Model, t.Firmware, t.Serial, t.Mac = d.info.model, d.info.firmware, d.info.serial, d.info.mac

	var tel telemetryReply
	if _, err := d.call(ctx, http.MethodGet, "/api/v1/telemetry", url.Values{"level": {"miner,hashboard"}}, nil, &tel, true); err != nil {
		return nil, err
	}
	if tel.Miner != nil {
		t.Hashrate_5SThs = tel.Miner.Hashrate.ths()
		t.PowerW = tel.Miner.Power.Value.v
		t.EfficiencyJth = tel.Miner.Efficiency.Value.v
	}
	for i, hb := range tel.Hashboards {
		b := &pb.Board{Index: int32(i), HashrateThs: hb.Hashrate.ths(), Chips: d.info.asics[hb.Serial]}
		if hb.Index.ok {
			b.Index = int32(hb.Index.v)
		}
		b.TempC = hb.Temperature.Average.v
		if !hb.Temperature.Average.ok {
			b.TempC = max(hb.Temperature.Inlet.v, hb.Temperature.Outlet.v)
		}
		t.Boards = append(t.Boards, b)
	}

	var ms miningReply
	status, err := d.call(ctx, http.MethodGet, "/api/v1/mining", nil, nil, &ms, true)
	if err != nil {
		return nil, err
	}
	if status != http.StatusNoContent {
		s := ms.Status
		t.HashrateAvgThs = s.AvgHashrateGHs.v / 1000
		t.UptimeS = int64(s.RebootUptimeS.v)
		t.PowerTargetW = s.PowerTargetW.v
		if t.PowerW == 0 {
			t.PowerW = s.PowerUsageW.v
		}
		if t.EfficiencyJth == 0 {
			t.EfficiencyJth = s.EfficiencyJTH.v
		}
		t.WorkMode = strings.ToLower(s.Status)
		t.State = d.state(s.Status)
		if s.Status == "Error" {
			t.Errors = append(t.Errors, "rig: mining status Error")
		}
	} else {
		t.State = pb.MinerState_MINER_STATE_ONLINE
	}
	if t.EfficiencyJth == 0 && t.Hashrate_5SThs > 0 {
		t.EfficiencyJth = t.PowerW / t.Hashrate_5SThs
	}

	pools, err := d.pools(ctx)
	if err != nil {
		return nil, err
	}
	t.Pools = pools

	var cool coolingReply
	if err := d.optional(d.call(ctx, http.MethodGet, "/api/v1/cooling", nil, nil, &cool, true)); err != nil {
		return nil, err
	}
	for _, f := range cool.Cooling.Fans {
		t.FansRpm = append(t.FansRpm, int32(f.RPM.v))
	}

	errs, err := d.errorList(ctx)
	if err != nil {
		return nil, err
	}
	t.Errors = append(t.Errors, errs...)
	return t, nil
}

// optional lets an endpoint that older firmware lacks (404) leave its fields empty.
func (d *Driver) optional(status int, err error) error {
	if status == http.StatusNotFound && errors.Is(err, miners.ErrRefused) {
		return nil
	}
	return err
}

// state maps the rig's mining status, with what this driver did to it, onto the MinerActor's states.
func (d *Driver) state(status string) pb.MinerState {
	switch status {
	case "Curtailed":
		return pb.MinerState_MINER_STATE_CURTAILED
	case "Stopped", "PoweringOff":
		if d.curtail == curtailFull {
			return pb.MinerState_MINER_STATE_CURTAILED
		}
		return pb.MinerState_MINER_STATE_STOPPED
	case "Mining", "DegradedMining", "PoweringOn":
		if d.curtail == curtailPartial {
			return pb.MinerState_MINER_STATE_CURTAILED
		}
		return pb.MinerState_MINER_STATE_MINING
	}
	return pb.MinerState_MINER_STATE_ONLINE
}

func (d *Driver) pools(ctx context.Context) ([]*pb.Pool, error) {
	var pr poolsReply
	if _, err := d.call(ctx, http.MethodGet, "/api/v1/pools", nil, nil, &pr, true); err != nil {
		return nil, err
	}
	var out []*pb.Pool
	for i, p := range pr.Pools {
		prio := int32(i)
		if p.Priority.ok {
			prio = int32(p.Priority.v)
		}
		out = append(out, &pb.Pool{Url: p.URL, User: p.User, Priority: prio, Status: p.Status,
			Accepted: int64(p.Accepted.v), Rejected: int64(p.Rejected.v), Active: p.Status == "Active"})
	}
	return out, nil
}

func (d *Driver) errorList(ctx context.Context) ([]string, error) {
	var es []errorEntry
	if err := d.optional(d.call(ctx, http.MethodGet, "/api/v1/errors", nil, nil, &es, true)); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.String())
	}
	return out, nil
}

// refreshInfo reads system, network and hashboard information when the cache is older than InfoTTL.
// These endpoints need no authentication.
func (d *Driver) refreshInfo(ctx context.Context) error {
	now := d.cfg.Clock.Now()
	if !d.infoAt.IsZero() && now.Sub(d.infoAt) < d.cfg.InfoTTL {
		return nil
	}
	var sys struct {
		Info struct {
			ProductName string `json:"product_name"`
			Model       string `json:"model"`
			OS          struct {
				Version string `json:"version"`
			} `json:"os"`
			CbSn string `json:"cb_sn"`
		} `json:"system-info"`
	}
	if _, err := d.call(ctx, http.MethodGet, "/api/v1/system", nil, nil, &sys, false); err != nil {
		return err
	}
	var netw struct {
		Info struct {
			MAC      string `json:"mac"`
			Hostname string `json:"hostname"`
		} `json:"network-info"`
	}
	if err := d.optional(d.call(ctx, http.MethodGet, "/api/v1/network", nil, nil, &netw, false)); err != nil {
		return err
	}
	var hbs struct {
		Boards []struct {
			Serial string `json:"hb_sn"`
			Asics  num    `json:"mining_asic_count"`
		} `json:"hashboards-info"`
	}
	if err := d.optional(d.call(ctx, http.MethodGet, "/api/v1/hashboards", nil, nil, &hbs, false)); err != nil {
		return err
	}
	info := rigInfo{model: sys.Info.ProductName, firmware: sys.Info.OS.Version, serial: sys.Info.CbSn,
		mac: netw.Info.MAC, hostname: netw.Info.Hostname, asics: map[string]int32{}}
	if info.model == "" {
		info.model = sys.Info.Model
	}
	for _, b := range hbs.Boards {
		info.asics[b.Serial] = int32(b.Asics.v)
	}
	if info.serial != "" {
		d.serial = info.serial
	}
	d.info, d.infoAt = info, now
	return nil
}

// Hostname returns the rig's hostname as last read (empty before the first poll).
func (d *Driver) Hostname() string { return d.info.hostname }
