package cgminer

import (
	"fmt"
	"strconv"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// field is a scalar the driver reads from summary or stats.
type field uint8

const (
	fieldNone field = iota
	fieldHash5s
	fieldHashAvg
	fieldElapsed
	fieldFanNum
	fieldPower
	fieldMode
	fieldModel
	fieldFirmware
	fieldHWPercent
	fieldPaused
	fieldSleeping
	fieldRateUnit
)

// alias is what a key means: the field, and for numbers the divisor to the field's unit (TH/s for
// hashrates).
type alias struct {
	field field
	div   float64
}

// aliases maps folded keys (see fold: lowercase, without ' ', '_', '-', '%') to fields. Folding already
// merges case and spacing variants ("GHS 5s"/"GHS5s"/"ghs_5s", "fan_num"/"fan num", "Device Hardware%"/
// "Device Hardware %"); the table adds the spellings and units that differ in letters.
var aliases = map[string]alias{
	"ghs5s":           {fieldHash5s, 1e3},
	"mhs5s":           {fieldHash5s, 1e6},
	"ghsav":           {fieldHashAvg, 1e3},
	"ghsavg":          {fieldHashAvg, 1e3},
	"mhsav":           {fieldHashAvg, 1e6},
	"mhsavg":          {fieldHashAvg, 1e6},
	"elapsed":         {fieldElapsed, 1},
	"fannum":          {fieldFanNum, 1},
	"fannumber":       {fieldFanNum, 1},
	"power":           {fieldPower, 1},
	"chainpower":      {fieldPower, 1},
	"totalpower":      {fieldPower, 1},
	"devicehardware":  {fieldHWPercent, 1},
	"devicehw":        {fieldHWPercent, 1},
	"devicehwpercent": {fieldHWPercent, 1},
	"mode":            {field: fieldMode},
	"workmode":        {field: fieldMode},
	"minermode":       {field: fieldMode},
	"type":            {field: fieldModel},
	"compiletime":     {field: fieldFirmware},
	"paused":          {field: fieldPaused},
	"ispaused":        {field: fieldPaused},
	"sleeping":        {field: fieldSleeping},
	"issleeping":      {field: fieldSleeping},
	"rateunit":        {field: fieldRateUnit},
}

// Per-board and per-fan keys carry a 1-based index: temp3, temp2_3, temp_pcb3, temp_chip3, chain_rate3,
// chain_acn3, fan3. S9-era firmware numbers chains up to 16, with zeros for empty slots.
const (
	maxBoards = 16
	maxFans   = 16
)

// hwErrorAlarmPercent is the Device Hardware% at or above which a sample carries an error line: healthy
// hashboards stay well under 0.1%.
const hwErrorAlarmPercent = 1.0

type board struct {
	pcb, chip, rate float64 // °C, °C, in the stats rate unit
	chips           float64
}

// sample accumulates one poll's summary and stats. Scalars keep the first value seen, so summary (read
// first) wins over stats.
type sample struct {
	set       uint32 // bit per field
	h5, hav   float64
	elapsed   float64
	power     float64
	hwPercent float64
	fanNum    float64
	paused    bool
	sleeping  bool
	rateDiv   float64 // divisor from the stats rate unit to TH/s; 0 until set means GH/s
	mode      string
	model     string
	firmware  string
	boards    [maxBoards + 1]board
	fans      [maxFans + 1]float64
	strings   *interner
}

func (s *sample) first(f field) bool {
	if s.set&(1<<f) != 0 {
		return false
	}
	s.set |= 1 << f
	return true
}

// absorb reads every object in the data array arr (SUMMARY or STATS).
func (s *sample) absorb(d *doc, arr int32) {
	for o := d.nodes[arr].first; o >= 0; o = d.nodes[o].next {
		if d.nodes[o].kind != kindObject {
			continue
		}
		for m := d.nodes[o].first; m >= 0; m = d.nodes[m].next {
			s.member(d, m)
		}
	}
}

func (s *sample) member(d *doc, m int32) {
	key := d.nodes[m].key
	if i, ok := indexed(key, "temp_pcb", maxBoards); ok {
		s.boardVal(&s.boards[i].pcb, d, m)
	} else if i, ok := indexed(key, "temp_chip", maxBoards); ok {
		s.boardVal(&s.boards[i].chip, d, m)
	} else if i, ok := indexed(key, "temp2_", maxBoards); ok {
		s.boardVal(&s.boards[i].chip, d, m)
	} else if i, ok := indexed(key, "temp", maxBoards); ok {
		s.boardVal(&s.boards[i].pcb, d, m)
	} else if i, ok := indexed(key, "chain_rate", maxBoards); ok {
		s.boardVal(&s.boards[i].rate, d, m)
	} else if i, ok := indexed(key, "chain_acn", maxBoards); ok {
		s.boardVal(&s.boards[i].chips, d, m)
	} else if i, ok := indexed(key, "fan", maxFans); ok {
		if v, ok := d.float(m); ok && v > 0 && s.fans[i] == 0 {
			s.fans[i] = v
		}
	} else {
		s.scalar(d, m)
	}
}

// boardVal keeps the first positive value for a board slot; sensor lists ("44-44-61-61") give their maximum.
func (s *sample) boardVal(dst *float64, d *doc, m int32) {
	if v, ok := d.maxOfList(m); ok && v > 0 && *dst == 0 {
		*dst = v
	}
}

func (s *sample) scalar(d *doc, m int32) {
	var tmp [maxKey]byte
	a := aliases[string(fold(tmp[:0], d.nodes[m].key))]
	if a.field == fieldNone || d.nodes[m].kind == kindNull {
		return
	}
	switch a.field {
	case fieldModel, fieldFirmware:
		if d.nodes[m].kind != kindString || len(d.nodes[m].raw) == 0 || !s.first(a.field) {
			return
		}
		if a.field == fieldModel {
			s.model = s.strings.get(d.nodes[m].raw)
		} else {
			s.firmware = s.strings.get(d.nodes[m].raw)
		}
	case fieldMode:
		if s.first(a.field) {
			s.mode = s.workMode(d, m)
		}
	case fieldPaused:
		if s.first(a.field) {
			s.paused = d.boolean(m)
		}
	case fieldSleeping:
		if s.first(a.field) {
			s.sleeping = d.boolean(m)
		}
	case fieldRateUnit:
		if s.first(a.field) {
			s.rateDiv = rateUnit(d.text(m))
		}
	default:
		v, ok := d.float(m)
		if !ok || !s.first(a.field) {
			return
		}
		v /= a.div
		switch a.field {
		case fieldHash5s:
			s.h5 = v
		case fieldHashAvg:
			s.hav = v
		case fieldElapsed:
			s.elapsed = v
		case fieldFanNum:
			s.fanNum = v
		case fieldPower:
			s.power = v
		case fieldHWPercent:
			s.hwPercent = v
		}
	}
}

// Work modes as Antminer firmware numbers them (bitmain-work-mode); strings pass through lowercased.
const (
	modeNormal = "normal"
	modeSleep  = "sleep"
	modeLow    = "low"
)

func (s *sample) workMode(d *doc, m int32) string {
	if d.nodes[m].kind == kindString {
		var tmp [maxKey]byte
		return s.strings.get(fold(tmp[:0], d.nodes[m].raw))
	}
	v, ok := d.float(m)
	switch {
	case !ok:
		return ""
	case v == 0:
		return modeNormal
	case v == 1:
		return modeSleep
	case v == 3:
		return modeLow
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// rateUnit returns the divisor from a stats rate_unit ("GH/s", "MH/s", "TH/s") to TH/s.
func rateUnit(u []byte) float64 {
	if len(u) > 0 {
		switch u[0] | 0x20 {
		case 'k':
			return 1e9
		case 'm':
			return 1e6
		case 't':
			return 1
		}
	}
	return 1e3
}

// indexed reports whether key is prefix (ASCII case-insensitive) followed only by digits, and the index.
func indexed(key []byte, prefix string, max int) (int, bool) {
	if len(key) <= len(prefix) || len(key) > len(prefix)+2 {
		return 0, false
	}
	for i := 0; i < len(prefix); i++ {
		c := key[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return 0, false
		}
	}
	n := 0
	for _, c := range key[len(prefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= max
}

// fill writes the sample into t.
func (s *sample) fill(t *pb.Telemetry) {
	t.Hashrate_5SThs, t.HashrateAvgThs = s.h5, s.hav
	t.UptimeS = int64(s.elapsed)
	t.Model, t.Firmware, t.WorkMode = s.model, s.firmware, s.mode
	t.PowerW = s.power
	if s.power > 0 && s.h5 > 0 {
		t.EfficiencyJth = s.power / s.h5
	}
	switch {
	case s.sleeping || s.mode == modeSleep:
		t.State = pb.MinerState_MINER_STATE_CURTAILED
	case s.paused:
		t.State = pb.MinerState_MINER_STATE_STOPPED
	case s.h5 > 0:
		t.State = pb.MinerState_MINER_STATE_MINING
	default:
		t.State = pb.MinerState_MINER_STATE_ONLINE
	}
	n := 0
	for i := range s.boards {
		if s.boards[i] != (board{}) {
			n++
		}
	}
	if n > 0 {
		div := s.rateDiv
		if div == 0 {
			div = 1e3
		}
		backing := make([]pb.Board, n)
		t.Boards = make([]*pb.Board, 0, n)
		for i := range s.boards {
			b := &s.boards[i]
			if *b == (board{}) {
				continue
			}
			pbb := &backing[len(t.Boards)]
			pbb.Index, pbb.TempC, pbb.ChipTempC = int32(i), b.pcb, b.chip
			pbb.HashrateThs, pbb.Chips = b.rate/div, int32(b.chips)
			t.Boards = append(t.Boards, pbb)
		}
	}
	fans := 0
	for _, v := range s.fans {
		if v > 0 {
			fans++
		}
	}
	if fans > 0 {
		t.FansRpm = make([]int32, 0, fans)
		for _, v := range s.fans {
			if v > 0 {
				t.FansRpm = append(t.FansRpm, int32(v))
			}
		}
	}
	if s.hwPercent >= hwErrorAlarmPercent {
		t.Errors = append(t.Errors, fmt.Sprintf("hardware error rate %.2f%%", s.hwPercent))
	}
	if t.State == pb.MinerState_MINER_STATE_MINING && s.fanNum <= maxFans && float64(fans) < s.fanNum {
		t.Errors = append(t.Errors, fmt.Sprintf("%d of %d fans report no speed", int(s.fanNum)-fans, int(s.fanNum)))
	}
}

// pools reads a POOLS array. ids holds each pool's POOL number, which write commands address.
func (s *sample) pools(d *doc, arr int32) (pools []*pb.Pool, ids []int) {
	n := 0
	for o := d.nodes[arr].first; o >= 0; o = d.nodes[o].next {
		if d.nodes[o].kind == kindObject {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	backing := make([]pb.Pool, n)
	pools, ids = make([]*pb.Pool, 0, n), make([]int, 0, n)
	for o := d.nodes[arr].first; o >= 0; o = d.nodes[o].next {
		if d.nodes[o].kind != kindObject {
			continue
		}
		// One pass over the pool's members, each key folded once; the first member of a name wins, as in get.
		var at [numPoolKeys]int32
		for i := range at {
			at[i] = -1
		}
		var tmp [maxKey]byte
		for m := d.nodes[o].first; m >= 0; m = d.nodes[m].next {
			if k := poolKey(fold(tmp[:0], d.nodes[m].key)); k >= 0 && at[k] < 0 {
				at[k] = m
			}
		}
		p := &backing[len(pools)]
		id, _ := d.float(at[poolKeyPool])
		prio, _ := d.float(at[poolKeyPriority])
		acc, _ := d.float(at[poolKeyAccepted])
		rej, _ := d.float(at[poolKeyRejected])
		p.Url = s.strings.get(d.text(at[poolKeyURL]))
		p.User = s.strings.get(d.text(at[poolKeyUser]))
		p.Status = s.strings.get(d.text(at[poolKeyStatus]))
		p.Priority, p.Accepted, p.Rejected = int32(prio), int64(acc), int64(rej)
		p.Active = d.boolean(at[poolKeyStratumActive])
		pools, ids = append(pools, p), append(ids, int(id))
	}
	return pools, ids
}

// The POOLS members pools reads.
const (
	poolKeyPool = iota
	poolKeyPriority
	poolKeyAccepted
	poolKeyRejected
	poolKeyURL
	poolKeyUser
	poolKeyStatus
	poolKeyStratumActive
	numPoolKeys
)

// poolKey maps a folded POOLS member name to its poolKey constant, -1 for the members pools does not read.
func poolKey(folded []byte) int {
	switch string(folded) {
	case "pool":
		return poolKeyPool
	case "priority":
		return poolKeyPriority
	case "accepted":
		return poolKeyAccepted
	case "rejected":
		return poolKeyRejected
	case "url":
		return poolKeyURL
	case "user":
		return poolKeyUser
	case "status":
		return poolKeyStatus
	case "stratumactive":
		return poolKeyStratumActive
	}
	return -1
}

// interner reuses the strings of earlier polls (model, firmware, pool URLs...), which rarely change, so a
// steady-state poll does not allocate them again. It is bounded and owned by one driver.
type interner struct{ seen []string }

const maxInterned = 64

func (in *interner) get(b []byte) string {
	for _, s := range in.seen {
		if s == string(b) {
			return s
		}
	}
	if len(b) == 0 {
		return ""
	}
	if len(in.seen) == maxInterned {
		in.seen = in.seen[:0]
	}
	s := string(b)
	in.seen = append(in.seen, s)
	return s
}
