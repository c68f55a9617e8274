package history

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestPlanQuery(t *testing.T) {
	c := DefaultConfig().withDefaults()
	now := t0.UnixMilli()
	ago := func(d time.Duration) int64 { return now - d.Milliseconds() }
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		from     int64
		step     time.Duration
		raw      bool
		wantRes  Resolution
		wantStep time.Duration
	}{
		{"short range, small step: raw", ago(10 * time.Minute), 5 * time.Second, true, Raw, 5 * time.Second},
		{"a minute step: minutes", ago(6 * time.Hour), time.Minute, true, Minute, time.Minute},
		{"15 minute step: minutes", ago(2 * day), 15 * time.Minute, true, Minute, 15 * time.Minute},
		{"90 s does not tile minutes: raw", ago(time.Hour), 90 * time.Second, true, Raw, 90 * time.Second},
		{"an hour step: hours", ago(7 * day), time.Hour, true, Hour, time.Hour},
		{"a day step: hours", ago(90 * day), 24 * time.Hour, true, Hour, 24 * time.Hour},
		{"5 s beyond the raw retention: minutes", ago(25 * time.Hour), 5 * time.Second, true, Minute, time.Minute},
		{"90 s beyond the raw retention: 2 m of minutes", ago(25 * time.Hour), 90 * time.Second, true, Minute, 2 * time.Minute},
		{"a minute beyond the minute retention: hours", ago(31 * day), time.Minute, true, Hour, time.Hour},
		{"groups have no raw: minutes", ago(10 * time.Minute), 5 * time.Second, false, Minute, time.Minute},
		{"beyond every retention: hours", ago(500 * day), 24 * time.Hour, true, Hour, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planQuery(tc.from, now, ms(tc.step), now, &c, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.res != tc.wantRes || p.step != ms(tc.wantStep) {
				t.Fatalf("got %s step %s, want %s step %s", p.res, time.Duration(p.step)*time.Millisecond, tc.wantRes, tc.wantStep)
			}
			if p.from%p.step != 0 || p.from > max(tc.from, p.cutoff) || p.n != int((now-p.from+p.step-1)/p.step) {
				t.Fatalf("plan %+v", p)
			}
		})
	}
	if p, _ := planQuery(ago(500*day), now, ms(24*time.Hour), now, &c, true); p.from < ago(c.HourRetention)-ms(24*time.Hour) {
		t.Fatalf("from not clamped to the hour retention: %+v", p)
	}
	for span, want := range map[time.Duration]time.Duration{time.Hour: 10 * time.Second, 24 * time.Hour: 5 * time.Minute,
		30 * day: 2 * time.Hour, 400 * day: 24 * time.Hour, 4000 * day: 14 * day} {
		if got := autoStep(ms(span), 500); got != ms(want) {
			t.Errorf("autoStep(%s) = %s, want %s", span, time.Duration(got)*time.Millisecond, want)
		}
	}
	if _, err := planQuery(ago(time.Hour), now, ms(time.Millisecond), now, &c, true); !errors.Is(err, ErrTooManyPoints) {
		t.Fatalf("1 ms steps over an hour: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config (defaults): %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.RawRetention = time.Minute }, "raw retention 1m0s must be at least 10m"},
		{func(c *Config) { c.MinuteRetention = time.Hour }, "minute retention 1h0m0s must be at least the raw retention"},
		{func(c *Config) { c.HourRetention = 24 * time.Hour }, "hour retention 24h0m0s must be at least the minute retention"},
		{func(c *Config) { c.MinuteCloseGrace = 25 * time.Hour }, "shorter than the raw retention"},
		{func(c *Config) { c.HourCloseGrace = 30 * time.Minute }, "hour close grace 30m0s must be at least the minute close grace"},
		{func(c *Config) { c.HourCloseGrace = 31 * 24 * time.Hour }, "shorter than the minute retention"},
		{func(c *Config) { c.MaxFutureSkew = -time.Second }, "max future skew"},
		{func(c *Config) { c.AutoPoints = 20_000 }, "auto points 20000 must be between 1 and max points 10000"},
		{func(c *Config) { c.MemTableSize = 1 << 20 }, "memtable size"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
		if _, err := Open(c); err == nil {
			t.Errorf("Open accepted an invalid config (%q)", tc.want)
		}
	}
}

func TestCodecs(t *testing.T) {
	tm := &pb.Telemetry{MinerId: "a", ObservedAtUnixMs: 1, State: pb.MinerState_MINER_STATE_CURTAILED, HashrateAvgThs: 101.5,
		PowerW: 3210.25, Boards: []*pb.Board{{TempC: 61.26, ChipTempC: 0}, {TempC: 59, ChipTempC: 77.84}}, FansRpm: []int32{5400, 0, 6000}}
	s := fromTelemetry(tm)
	if s.hashrate != 101.5 || s.temp != 778 || s.fan != 0 || s.state != uint8(pb.MinerState_MINER_STATE_CURTAILED) {
		t.Fatalf("fromTelemetry: %+v", s)
	}
	v := appendSample(nil, s)
	if len(v) != sampleLen {
		t.Fatalf("sample is %d bytes", len(v))
	}
	if got, err := decodeSample(1, v); err != nil || got != s {
		t.Fatalf("sample round trip: %+v %v", got, err)
	}
	none := fromTelemetry(&pb.Telemetry{Hashrate_5SThs: -3, PowerW: nan()})
	if none.temp != noTemp || none.fan != noFan || none.hashrate != 0 || none.power != 0 {
		t.Fatalf("no readings: %+v", none)
	}
	a := agg{start: 60_000, last: 119_999, samples: 12, minutes: 1, hMean: 100.25, hMin: 99, hMax: 101.5, pMean: 3000.5, temp: 655,
		fan: 4000, state: 4}
	if got, err := decodeBucket(60_000, appendBucket(nil, a)); err != nil || got != a || len(appendBucket(nil, a)) != bucketLen {
		t.Fatalf("bucket round trip: %+v %v", got, err)
	}
	g := newGagg()
	g.add(a)
	g.add(a)
	gv := appendGroupBucket(nil, g)
	back, err := decodeGroupBucket(gv)
	if err != nil || back.miners != 2 || back.hSum != 200.5 || back.states[4] != 2 || len(gv) != 25+4*numStates {
		t.Fatalf("group round trip: %+v %v (%d bytes)", back, err, len(gv))
	}
	m, err := decodeMembers(appendMembers(nil, []string{"a", "site/b", ""}))
	if err != nil || len(m) != 3 || m[1] != "site/b" {
		t.Fatalf("members: %q %v", m, err)
	}
	for _, bad := range [][]byte{nil, {5, 1}, {1, 9, 'x'}} {
		if _, err := decodeMembers(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeMembers(%v): %v", bad, err)
		}
	}
	if _, err := decodeGroupBucket(gv[:30]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short group bucket: %v", err)
	}
	// One miner's keys never prefix another's, even with '/' in ids.
	k1, k2 := seriesPrefix(pRaw, "a"), appendKey(nil, pRaw, "a/b", 5)
	if strings.HasPrefix(string(k2), string(k1)) {
		t.Fatal("miner a's prefix matches a/b's keys")
	}
}

func nan() float64 { return math.NaN() }

func TestSchemaKeys(t *testing.T) {
	k := appendKey(nil, "", "site/a", t0.UnixMilli())
	if got := formatSeriesKey(k); got != "site/a@2024-03-01T10:00:00.000Z" {
		t.Fatalf("format: %q", got)
	}
	for _, in := range []string{"site/a@2024-03-01T10:00:00Z", "site/a@" + strconv.FormatInt(t0.UnixMilli(), 10)} {
		if got, err := parseSeriesKey(in); err != nil || string(got) != string(k) {
			t.Fatalf("parse %q: %q %v", in, got, err)
		}
	}
	if s := Schema(); len(s.Prefixes) != 8 {
		t.Fatalf("schema: %d prefixes", len(s.Prefixes))
	}
}
