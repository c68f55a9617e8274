package history

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Key layout (doc.go shows it with the values). Ids end with a 0x00 byte, which no valid id contains, so
// the key of one id never prefixes another's (miner ids may contain '/'), and times are 8 bytes big-endian
// unix milliseconds, so one id's records sort by time and a range read is one seek.
const (
	pRaw        = "h/r/"
	pMinute     = "h/m/"
	pHour       = "h/h/"
	pGroupMin   = "h/gm/"
	pGroupHour  = "h/gh/"
	pIndex      = "h/i/"
	pGroups     = "h/g/"
	keyVersion  = "h/v"
	formatV1    = 1
	idSeparator = 0x00
)

func seriesPrefix(p, id string) []byte {
	b := make([]byte, 0, len(p)+len(id)+9)
	b = append(b, p...)
	b = append(b, id...)
	return append(b, idSeparator)
}

// appendKey appends p, id, 0x00 and ts to dst.
func appendKey(dst []byte, p, id string, ts int64) []byte {
	dst = append(dst, p...)
	dst = append(dst, id...)
	dst = append(dst, idSeparator)
	return binary.BigEndian.AppendUint64(dst, uint64(ts))
}

// keyTime reads the time at the end of a series key.
func keyTime(k []byte) int64 { return int64(binary.BigEndian.Uint64(k[len(k)-8:])) }

func minerPrefix(r Resolution) string {
	switch r {
	case Raw:
		return pRaw
	case Minute:
		return pMinute
	}
	return pHour
}

func groupPrefix(r Resolution) string {
	if r == Hour {
		return pGroupHour
	}
	return pGroupMin
}

// validID reports whether id can be a miner or group key part.
func validID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrInvalidID, id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q contains a control character", ErrInvalidID, id)
		}
	}
	return nil
}

// Missing readings.
const (
	noTemp int16  = math.MinInt16 // no board or chip temperature
	noFan  uint16 = math.MaxUint16
)

// sample is one stored reading.
type sample struct {
	ts       int64 // unix ms
	hashrate float32
	power    float32
	temp     int16  // hottest board or chip, 0.1 °C; noTemp when none
	fan      uint16 // slowest fan, rpm; noFan when none
	state    uint8
}

// sampleLen is the stored size of a raw sample's value.
const sampleLen = 13

// fromTelemetry reduces a Telemetry to what history keeps: the 5 s hashrate (the average when a driver gives
// no 5 s figure), power, the hottest board or chip temperature, the slowest fan, the state.
func fromTelemetry(t *pb.Telemetry) sample {
	h := t.GetHashrate_5SThs()
	if h <= 0 || !finite(h) {
		h = t.GetHashrateAvgThs()
	}
	s := sample{ts: t.GetObservedAtUnixMs(), hashrate: reading(h), power: reading(t.GetPowerW()), temp: noTemp,
		fan: noFan, state: uint8(min(max(t.GetState(), 0), math.MaxUint8))}
	hot := math.Inf(-1)
	for _, b := range t.GetBoards() {
		for _, c := range [2]float64{b.GetTempC(), b.GetChipTempC()} {
			if c != 0 && finite(c) {
				hot = max(hot, c)
			}
		}
	}
	if !math.IsInf(hot, -1) {
		s.temp = deciC(hot)
	}
	for _, f := range t.GetFansRpm() {
		s.fan = min(s.fan, uint16(min(max(f, 0), math.MaxUint16-1)))
	}
	return s
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// reading clamps a rate or power to a finite, non-negative float32.
func reading(v float64) float32 {
	if !finite(v) || v < 0 {
		return 0
	}
	return float32(min(v, math.MaxFloat32))
}

func deciC(c float64) int16 {
	return int16(min(max(math.Round(c*10), math.MinInt16+1), math.MaxInt16))
}

func tempC(t int16) float64 {
	if t == noTemp {
		return 0
	}
	return float64(t) / 10
}

func fanRPM(f uint16) int {
	if f == noFan {
		return -1
	}
	return int(f)
}

// Raw sample value, 13 bytes: hashrate f32 | power f32 | temp i16 (0.1 °C) | fan u16 | state u8.
func appendSample(dst []byte, s sample) []byte {
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(s.hashrate))
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(s.power))
	dst = binary.BigEndian.AppendUint16(dst, uint16(s.temp))
	dst = binary.BigEndian.AppendUint16(dst, s.fan)
	return append(dst, s.state)
}

func decodeSample(ts int64, v []byte) (sample, error) {
	if len(v) < sampleLen {
		return sample{}, fmt.Errorf("%w: raw sample of %d bytes, want %d", ErrCorrupt, len(v), sampleLen)
	}
	return sample{ts: ts,
		hashrate: math.Float32frombits(binary.BigEndian.Uint32(v[0:])),
		power:    math.Float32frombits(binary.BigEndian.Uint32(v[4:])),
		temp:     int16(binary.BigEndian.Uint16(v[8:])),
		fan:      binary.BigEndian.Uint16(v[10:]),
		state:    v[12],
	}, nil
}

// agg is one miner's bucket: a stored minute or hour, or an open one, or (in a query) one raw sample.
type agg struct {
	start   int64 // unix ms
	last    int64 // newest sample, unix ms
	samples uint32
	// minutes is the bucket's weight when buckets are averaged: 1 for a minute, the minutes with samples for
	// an hour (a raw sample read in a query weighs 1).
	minutes    uint32
	hMean      float64
	hMin, hMax float64
	pMean      float64
	temp       int16
	fan        uint16
	state      uint8
}

func sampleAgg(s sample) agg {
	h := float64(s.hashrate)
	return agg{start: s.ts, last: s.ts, samples: 1, minutes: 1, hMean: h, hMin: h, hMax: h, pMean: float64(s.power),
		temp: s.temp, fan: s.fan, state: s.state}
}

// bucketLen is the stored size of a miner bucket's value.
const bucketLen = 31

// Miner bucket value, 31 bytes: samples u32 | minutes u16 | state u8 | last offset u32 (ms after the bucket
// start) | hashrate mean, min, max f32 | power mean f32 | temp i16 (0.1 °C) | fan u16.
func appendBucket(dst []byte, a agg) []byte {
	dst = binary.BigEndian.AppendUint32(dst, a.samples)
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(a.minutes, math.MaxUint16)))
	dst = append(dst, a.state)
	dst = binary.BigEndian.AppendUint32(dst, uint32(max(a.last-a.start, 0)))
	for _, f := range [4]float64{a.hMean, a.hMin, a.hMax, a.pMean} {
		dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(a.temp))
	return binary.BigEndian.AppendUint16(dst, a.fan)
}

func decodeBucket(start int64, v []byte) (agg, error) {
	if len(v) < bucketLen {
		return agg{}, fmt.Errorf("%w: bucket of %d bytes, want %d", ErrCorrupt, len(v), bucketLen)
	}
	f := func(o int) float64 { return float64(math.Float32frombits(binary.BigEndian.Uint32(v[o:]))) }
	return agg{start: start,
		samples: binary.BigEndian.Uint32(v[0:]),
		minutes: uint32(binary.BigEndian.Uint16(v[4:])),
		state:   v[6],
		last:    start + int64(binary.BigEndian.Uint32(v[7:])),
		hMean:   f(11), hMin: f(15), hMax: f(19), pMean: f(23),
		temp: int16(binary.BigEndian.Uint16(v[27:])),
		fan:  binary.BigEndian.Uint16(v[29:]),
	}, nil
}

// numStates is how many miner states a group bucket counts (pb.MinerState values 0..6).
var numStates = len(pb.MinerState_name)

// gagg is a group's bucket: the sum of its miners' bucket means. Every field merges by addition except
// minutes and temp (max), so the contributions of miners closing the same bucket at different times (and
// the open buckets a query adds) combine in any order.
type gagg struct {
	miners uint32
	// minutes is the most minutes any contributing miner had in the bucket (1 for a minute bucket); the
	// group's hashrate over the bucket is hSum / minutes.
	minutes uint32
	hSum    float64 // Σ miner mean × miner minutes
	pSum    float64
	temp    int16
	states  []uint32 // by pb.MinerState
}

func newGagg() gagg { return gagg{temp: noTemp, states: make([]uint32, numStates)} }

// add folds one miner's bucket in.
func (g *gagg) add(a agg) {
	g.miners++
	g.minutes = max(g.minutes, a.minutes)
	g.hSum += a.hMean * float64(a.minutes)
	g.pSum += a.pMean * float64(a.minutes)
	g.temp = max(g.temp, a.temp)
	if int(a.state) >= len(g.states) {
		g.states = append(g.states, make([]uint32, int(a.state)+1-len(g.states))...)
	}
	g.states[a.state]++
}

// merge folds another group bucket of the same group and start in.
func (g *gagg) merge(o gagg) {
	g.miners += o.miners
	g.minutes = max(g.minutes, o.minutes)
	g.hSum += o.hSum
	g.pSum += o.pSum
	g.temp = max(g.temp, o.temp)
	if len(o.states) > len(g.states) {
		g.states = append(g.states, make([]uint32, len(o.states)-len(g.states))...)
	}
	for i, n := range o.states {
		g.states[i] += n
	}
}

// Group bucket value, 25 + 4×states bytes (53 with today's 7 states): miners u32 | minutes u16 | temp i16 |
// hashrate sum f64 | power sum f64 | states count u8 | count × u32, by pb.MinerState. Sums are float64: they
// accumulate thousands of miners across read-modify-writes.
func appendGroupBucket(dst []byte, g gagg) []byte {
	dst = binary.BigEndian.AppendUint32(dst, g.miners)
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(g.minutes, math.MaxUint16)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(g.temp))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(g.hSum))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(g.pSum))
	n := min(len(g.states), math.MaxUint8)
	dst = append(dst, byte(n))
	for _, c := range g.states[:n] {
		dst = binary.BigEndian.AppendUint32(dst, c)
	}
	return dst
}

func decodeGroupBucket(v []byte) (gagg, error) {
	const head = 25
	if len(v) < head || len(v) < head+4*int(v[24]) {
		return gagg{}, fmt.Errorf("%w: group bucket of %d bytes", ErrCorrupt, len(v))
	}
	g := gagg{
		miners:  binary.BigEndian.Uint32(v[0:]),
		minutes: uint32(binary.BigEndian.Uint16(v[4:])),
		temp:    int16(binary.BigEndian.Uint16(v[6:])),
		hSum:    math.Float64frombits(binary.BigEndian.Uint64(v[8:])),
		pSum:    math.Float64frombits(binary.BigEndian.Uint64(v[16:])),
		states:  make([]uint32, max(int(v[24]), numStates)),
	}
	for i := range int(v[24]) {
		g.states[i] = binary.BigEndian.Uint32(v[head+4*i:])
	}
	return g, nil
}

// Group registry value: uvarint count, then per member uvarint length and bytes.
func appendMembers(dst []byte, members []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(members)))
	for _, m := range members {
		dst = binary.AppendUvarint(dst, uint64(len(m)))
		dst = append(dst, m...)
	}
	return dst
}

func decodeMembers(v []byte) ([]string, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return nil, fmt.Errorf("%w: group member list", ErrCorrupt)
	}
	v = v[k:]
	out := make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint(v)
		if k <= 0 || l > uint64(len(v)-k) {
			return nil, fmt.Errorf("%w: group member list", ErrCorrupt)
		}
		out = append(out, string(v[k:k+int(l)]))
		v = v[k+int(l):]
	}
	return out, nil
}
