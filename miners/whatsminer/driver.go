package whatsminer

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// Driver speaks the Whatsminer API to one miner. Like every miners.Driver it is used from one goroutine at
// a time.
type Driver struct {
	id, addr    string
	serial, mac string
	cfg         Config

	// v2 token
	creds   wmapi.V2Credentials
	tokenAt time.Time
	haveTok bool
	// v3 salt
	salt string

	info   deviceInfo
	infoAt time.Time

	curtail    curtailKind
	limitSaved float64 // the power limit before a partial curtailment, W
}

type curtailKind uint8

const (
	curtailNone    curtailKind = iota
	curtailFull                // powered off by CURTAIL
	curtailPartial             // power limit lowered by CURTAIL
)

// deviceInfo is what changes rarely: cached for Config.InfoTTL.
type deviceInfo struct {
	model, serial, mac, firmware string
}

var _ miners.Driver = (*Driver)(nil)

// New returns a driver for dev: Address is host:port of the API of Config.APIVersion (4028 for v2, 4433
// for v3); a bare host gets the version's default port.
func New(dev *pb.Device, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr := dev.GetAddress()
	if addr == "" {
		return nil, fmt.Errorf("whatsminer: device %q has no address", dev.GetMinerId())
	}
	if _, _, err := net.SplitHostPort(addr); err != nil { // a bare host: the version's port
		port := DefaultPortV2
		if cfg.APIVersion == 3 {
			port = DefaultPortV3
		}
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
	}
	return &Driver{id: dev.GetMinerId(), addr: addr, serial: dev.GetSerial(), mac: dev.GetMac(), cfg: cfg}, nil
}

// Close implements miners.Driver; no connection is held between exchanges.
func (d *Driver) Close() error { return nil }

// Poll reads one sample.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	start := time.Now()
	var r reading
	var err error
	if d.cfg.APIVersion == 3 {
		err = d.readV3(ctx, &r, true)
	} else {
		err = d.readV2(ctx, &r, true)
	}
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", d.id, err)
	}
	t := r.telemetry(d)
	t.ObservedAtUnixMs = d.cfg.Clock.Now().UnixMilli()
	t.PollLatencyUs = time.Since(start).Microseconds()
	return t, nil
}

// reading is one poll's worth of values, from either API version, in hashfleet's units.
type reading struct {
	h5, hAvg       float64 // TH/s
	boards         []*pb.Board
	fans           []int32
	powerW, limitW float64
	uptime         int64
	pools          []*pb.Pool
	errors         []string
	stopped        bool
	powerMode      string
}

func (r *reading) telemetry(d *Driver) *pb.Telemetry {
	t := &pb.Telemetry{
		MinerId: d.id, HashrateAvgThs: round(r.hAvg), Hashrate_5SThs: round(r.h5), Boards: r.boards, FansRpm: r.fans,
		PowerW: r.powerW, PowerTargetW: r.limitW, Pools: r.pools, UptimeS: r.uptime, Errors: r.errors,
		WorkMode: r.powerMode, Firmware: d.info.firmware, Model: d.info.model,
		Serial: firstNonEmpty(d.info.serial, d.serial), Mac: firstNonEmpty(d.info.mac, d.mac),
	}
	if r.h5 > 0 && r.powerW > 0 {
		t.EfficiencyJth = round(r.powerW / r.h5)
	}
	switch {
	case r.stopped && d.curtail == curtailFull:
		t.State = pb.MinerState_MINER_STATE_CURTAILED
	case r.stopped:
		t.State = pb.MinerState_MINER_STATE_STOPPED
	case d.curtail == curtailPartial:
		t.State = pb.MinerState_MINER_STATE_CURTAILED
	case r.h5 > 0:
		t.State = pb.MinerState_MINER_STATE_MINING
	default:
		t.State = pb.MinerState_MINER_STATE_ONLINE
	}
	return t
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func round(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// num is a JSON number the firmware may also send as a string ("3250", "3250.5") or null.
type num struct {
	v  float64
	ok bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		uq, err := strconv.Unquote(s)
		if err != nil {
			return err
		}
		s = strings.TrimSpace(uq)
		if s == "" {
			return nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %.32q", s)
	}
	n.v, n.ok = v, true
	return nil
}

// decode parses a reply into out, naming the command in the error.
func decode(what string, body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: %s: %w: %w", what, describeJSONErr(body, err), miners.ErrMalformed, err)
	}
	return nil
}

func describeJSONErr(body []byte, err error) string {
	if _, ok := err.(*json.SyntaxError); ok && !json.Valid(body) {
		return fmt.Sprintf("invalid JSON (%d bytes, truncated or garbled)", len(body))
	}
	return "unexpected reply shape"
}

// boolish reads the firmware's "true"/"false" strings and booleans.
type boolish bool

func (b *boolish) UnmarshalJSON(raw []byte) error {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	switch strings.ToLower(s) {
	case "true", "1", "yes", "y":
		*b = true
	case "false", "0", "no", "n", "", "null":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %.32q", s)
	}
	return nil
}
