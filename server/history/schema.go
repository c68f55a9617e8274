package history

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Schema describes the history's keys (doc.go) to the store inspector. Series keys read as
// "<id>@<RFC 3339 time>"; type "<id>@<RFC 3339 or unix ms>" to seek one.
func Schema() inspect.Schema {
	series := func(r []byte) bool { return len(r) >= 9 && r[len(r)-9] == idSeparator }
	bucket := func(k, v []byte) (proto.Message, error) {
		a, err := decodeBucket(keyTime(k), v)
		if err != nil {
			return nil, err
		}
		return inspect.Struct(map[string]any{"samples": float64(a.samples), "minutes": float64(a.minutes),
			"hashrate_ths": a.hMean, "hashrate_min_ths": a.hMin, "hashrate_max_ths": a.hMax, "power_w": a.pMean,
			"temp_max_c": tempC(a.temp), "fan_min_rpm": float64(fanRPM(a.fan)), "state": pb.MinerState(a.state).String(),
			"last": time.UnixMilli(a.last).UTC().Format(time.RFC3339Nano)})
	}
	group := func(_, v []byte) (proto.Message, error) {
		g, err := decodeGroupBucket(v)
		if err != nil {
			return nil, err
		}
		states := map[string]any{}
		for s, n := range stateMap(g.states) {
			states[s.String()] = float64(n)
		}
		return inspect.Struct(map[string]any{"miners": float64(g.miners), "minutes": float64(g.minutes),
			"hashrate_sum_ths": g.hSum, "power_sum_w": g.pSum, "temp_max_c": tempC(g.temp), "states": states})
	}
	sp := func(name, p, typ string, decode func(k, v []byte) (proto.Message, error)) inspect.Prefix {
		return inspect.Prefix{Name: name, Prefix: p, Type: typ, Decode: decode, Match: series, FormatKey: formatSeriesKey,
			ParseKey: parseSeriesKey}
	}
	return inspect.Schema{
		Kind: "history",
		Doc:  "cloud telemetry history: raw samples, 1-minute and 1-hour rollups per miner and per group",
		Prefixes: []inspect.Prefix{
			{Name: "format", Prefix: keyVersion, Exact: true, Type: "format version (1 byte)",
				Decode: func(_, v []byte) (proto.Message, error) {
					return inspect.Struct(map[string]any{"version": float64(v[0])})
				}},
			{Name: "miner-index", Prefix: pIndex, Type: "(empty: miners with history)",
				Decode: func(_, _ []byte) (proto.Message, error) { return nil, nil }},
			{Name: "groups", Prefix: pGroups, Type: "member list (binary)",
				Decode: func(_, v []byte) (proto.Message, error) {
					m, err := decodeMembers(v)
					if err != nil {
						return nil, err
					}
					members := make([]any, len(m))
					for i, id := range m {
						members[i] = id
					}
					return inspect.Struct(map[string]any{"members": members})
				}},
			sp("raw", pRaw, "sample (13 bytes)", func(k, v []byte) (proto.Message, error) {
				s, err := decodeSample(keyTime(k), v)
				if err != nil {
					return nil, err
				}
				return inspect.Struct(map[string]any{"hashrate_ths": float64(s.hashrate), "power_w": float64(s.power),
					"temp_max_c": tempC(s.temp), "fan_min_rpm": float64(fanRPM(s.fan)), "state": pb.MinerState(s.state).String()})
			}),
			sp("minute", pMinute, "bucket (31 bytes)", bucket),
			sp("hour", pHour, "bucket (31 bytes)", bucket),
			sp("group-minute", pGroupMin, "group bucket", group),
			sp("group-hour", pGroupHour, "group bucket", group),
		},
		Summarize: func(r *inspect.Reader, s *inspect.Summary) error {
			s.Add("miners with history", r.Count([]byte(pIndex)))
			s.Add("groups", r.Count([]byte(pGroups)))
			return nil
		},
	}
}

func formatSeriesKey(rest []byte) string {
	if len(rest) < 9 || bytes.LastIndexByte(rest[:len(rest)-8], idSeparator) != len(rest)-9 {
		return inspect.Printable(rest)
	}
	i := len(rest) - 9
	return inspect.Printable(rest[:i]) + "@" + time.UnixMilli(keyTime(rest)).UTC().Format("2006-01-02T15:04:05.000Z")
}

func parseSeriesKey(rest string) ([]byte, error) {
	id, at, ok := strings.Cut(rest, "@")
	if !ok {
		return append([]byte(id), idSeparator), nil // the id's first record
	}
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		t, terr := time.Parse(time.RFC3339Nano, at)
		if terr != nil {
			return nil, fmt.Errorf("want <id>@<RFC 3339 time or unix ms>, got %q", rest)
		}
		ms = t.UnixMilli()
	}
	return appendKey(nil, "", id, ms), nil
}
