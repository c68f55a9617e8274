package sim

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Replies follow bmminer on an S19: key spellings, "GHS 5s" and chain rates as strings, temperature lists
// as "44-44-61-61". Two additions firmware differs on: power as "chain_power":"3068 W", and a "Paused"
// flag in SUMMARY while mining is paused.

const shareDiff = 65536

// status appends the opening of a reply: {"STATUS":[{…}],
func (m *Miner) status(b []byte, now time.Time, st byte, code int, msg string) []byte {
	b = append(b, `{"STATUS":[{"STATUS":"`...)
	b = append(b, st, '"', ',')
	b = kint(b, "When", now.Unix())
	b = kint(b, "Code", int64(code))
	b = kstr(b, "Msg", msg)
	b = kstr(b, "Description", "cgminer "+bmminerVer)
	b = end(b, '}')
	return append(b, "],"...)
}

func (m *Miner) totals() (acc, rej int64) {
	for _, p := range m.pools {
		acc, rej = acc+int64(p.accepted), rej+int64(p.rejected)
	}
	return acc, rej
}

func (m *Miner) summary(b []byte, now time.Time, r *reading) []byte {
	acc, rej := m.totals()
	b = m.status(b, now, 'S', 11, "Summary")
	b = append(b, `"SUMMARY":[{`...)
	b = kint(b, "Elapsed", int64(r.uptime/time.Second))
	b = kquoted(b, "GHS 5s", r.h5GH, "")
	b = kfloat(b, "GHS av", r.havGH)
	b = kfloat(b, "GHS 30m", r.havGH)
	b = kint(b, "Found Blocks", 0)
	b = kint(b, "Getworks", int64(r.uptime/(30*time.Second)))
	b = kint(b, "Accepted", acc)
	b = kint(b, "Rejected", rej)
	b = kint(b, "Hardware Errors", acc/5000)
	b = kfloat(b, "Utility", round2(float64(acc)*60/max(1, r.uptime.Seconds())))
	b = kint(b, "Discarded", acc*2)
	b = kint(b, "Stale", 0)
	b = kint(b, "Get Failures", 0)
	b = kint(b, "Remote Failures", 0)
	b = kint(b, "Difficulty Accepted", acc*shareDiff)
	b = kint(b, "Difficulty Rejected", rej*shareDiff)
	b = kfloat(b, "Device Hardware%", 0.0002)
	b = kfloat(b, "Device Rejected%", round2(100*float64(rej)/max(1, float64(acc+rej))))
	b = kfloat(b, "Pool Rejected%", round2(100*float64(rej)/max(1, float64(acc+rej))))
	b = kfloat(b, "Pool Stale%", 0)
	b = kint(b, "Last getwork", now.Unix())
	b = kbool(b, "Paused", m.paused)
	b = end(b, '}')
	return append(b, "],"...)
}

func (m *Miner) versionFields(b []byte) []byte {
	if m.fleet.cfg.Software == SoftwareBOSminer {
		b = kstr(b, "BOSminer", bosminerVer)
	} else {
		b = kstr(b, "BMMiner", bmminerVer)
	}
	b = kstr(b, "Miner", minerVer)
	b = kstr(b, "CompileTime", m.firmwareLocked())
	return kstr(b, "Type", m.model.name)
}

func (m *Miner) version(b []byte, now time.Time) []byte {
	b = m.status(b, now, 'S', 22, "CGMiner versions")
	b = append(b, `"VERSION":[{`...)
	b = m.versionFields(b)
	b = kstr(b, "API", "3.1")
	b = end(b, '}')
	return append(b, "],"...)
}

func (m *Miner) stats(b []byte, now time.Time, r *reading) []byte {
	b = m.status(b, now, 'S', 70, "CGMiner stats")
	b = append(b, `"STATS":[{`...)
	b = m.versionFields(b)
	b = end(b, '}')
	b = append(b, ",{"...)
	b = kint(b, "STATS", 0)
	b = kstr(b, "ID", m.model.id)
	b = kint(b, "Elapsed", int64(r.uptime/time.Second))
	b = kint(b, "Calls", 0)
	b = kfloat(b, "Wait", 0)
	b = kfloat(b, "Max", 0)
	b = kfloat(b, "Min", 99999999)
	b = kquoted(b, "GHS 5s", r.h5GH, "")
	b = kfloat(b, "GHS av", r.havGH)
	b = kfloat(b, "rate_30m", r.havGH)
	mode := int64(0)
	if r.sleeping {
		mode = 1
	}
	b = kint(b, "Mode", mode)
	b = kint(b, "miner_count", int64(r.boards))
	b = kstr(b, "frequency", "")
	b = kint(b, "fan_num", int64(r.fans))
	var key [24]byte
	for i := range r.fans {
		b = kint(b, indexKey(key[:0], "fan", i), int64(r.fanRPM[i]))
	}
	b = kint(b, "temp_num", int64(r.boards))
	for i := range r.boards {
		b = kint(b, indexKey(key[:0], "temp", i), int64(r.pcb[i]))
	}
	for i := range r.boards {
		b = kint(b, indexKey(key[:0], "temp2_", i), int64(r.chip[i]))
	}
	for i := range r.boards {
		b = appendKey(b, indexKey(key[:0], "temp_pcb", i))
		b = appendSensorList(b, r.pcb[i])
	}
	for i := range r.boards {
		b = appendKey(b, indexKey(key[:0], "temp_chip", i))
		b = appendSensorList(b, r.chip[i])
	}
	b = kfloat(b, "total_rateideal", round2(m.nominal*1e3))
	b = kstr(b, "rate_unit", "GH/s")
	b = kint(b, "total_freqavg", 525)
	b = kint(b, "total_acn", int64(r.boards*m.model.chips))
	b = kfloat(b, "total_rate", r.h5GH)
	for i := range r.boards {
		b = kfloat(b, indexKey(key[:0], "chain_rateideal", i), round2(m.nominal*1e3/float64(r.boards)))
	}
	for i := range r.boards {
		b = kint(b, indexKey(key[:0], "chain_acn", i), int64(m.model.chips))
	}
	for i := range r.boards {
		b = kint(b, indexKey(key[:0], "chain_hw", i), 0)
	}
	for i := range r.boards {
		b = kquoted(b, indexKey(key[:0], "chain_rate", i), r.rateGH[i], "")
	}
	b = kquoted(b, "chain_power", r.powerW, " W")
	b = kstr(b, "miner_version", minerVer)
	b = kstr(b, "miner_id", m.serial)
	b = end(b, '}')
	return append(b, "],"...)
}

func (m *Miner) poolsReply(b []byte, now time.Time) []byte {
	b = m.status(b, now, 'S', 7, strconv.Itoa(len(m.pools))+" Pool(s)")
	b = append(b, `"POOLS":[`...)
	active := m.activeLocked()
	for i, p := range m.pools {
		acc, rej := int64(p.accepted), int64(p.rejected)
		b = append(b, '{')
		b = kint(b, "POOL", int64(i))
		b = kstr(b, "URL", p.url)
		b = kstr(b, "Status", p.status())
		b = kint(b, "Priority", int64(p.prio))
		b = kint(b, "Quota", 1)
		b = kstr(b, "Long Poll", "N")
		b = kint(b, "Getworks", acc/10)
		b = kint(b, "Accepted", acc)
		b = kint(b, "Rejected", rej)
		b = kint(b, "Discarded", 0)
		b = kint(b, "Stale", 0)
		b = kint(b, "Get Failures", 0)
		b = kint(b, "Remote Failures", 0)
		b = kstr(b, "User", p.user)
		b = kstr(b, "Diff", "65.5K")
		b = kint(b, "Difficulty Accepted", acc*shareDiff)
		b = kint(b, "Difficulty Rejected", rej*shareDiff)
		b = kint(b, "Last Share Difficulty", shareDiff)
		b = kbool(b, "Has Stratum", true)
		b = kbool(b, "Stratum Active", i == active)
		b = kstr(b, "Stratum URL", stratumHost(p.url))
		b = kbool(b, "Has GBT", false)
		b = kfloat(b, "Pool Rejected%", round2(100*float64(rej)/max(1, float64(acc+rej))))
		b = end(b, '}')
		b = append(b, ',')
	}
	b = end(b, ']')
	return append(b, ',')
}

func (m *Miner) devs(b []byte, now time.Time, r *reading) []byte {
	b = m.status(b, now, 'S', 9, strconv.Itoa(r.boards)+" ASC(s)")
	b = append(b, `"DEVS":[`...)
	enabled := "Y"
	if !m.hashingLocked() {
		enabled = "N"
	}
	for i := range r.boards {
		b = append(b, '{')
		b = kint(b, "ASC", int64(i))
		b = kstr(b, "Name", "BTM_SOC")
		b = kint(b, "ID", int64(i))
		b = kstr(b, "Enabled", enabled)
		b = kstr(b, "Status", "Alive")
		b = kfloat(b, "Temperature", r.pcb[i])
		b = kfloat(b, "MHS 5s", r.rateGH[i]*1e3)
		b = kint(b, "Device Elapsed", int64(r.uptime/time.Second))
		b = end(b, '}')
		b = append(b, ',')
	}
	b = end(b, ']')
	return append(b, ',')
}

// stratumHost returns the host of a stratum URL, as cgminer's "Stratum URL" shows it.
func stratumHost(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 {
		u = u[:i]
	}
	return u
}

// appendSensorList writes a four-sensor board reading as bmminer does: "56-56-58-58".
func appendSensorList(b []byte, t float64) []byte {
	v := int64(t)
	b = append(b, '"')
	for i, x := range [4]int64{v - 2, v - 2, v, v} {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return append(b, '"', ',')
}

// indexKey appends prefix followed by the 1-based chain or fan number.
func indexKey(dst []byte, prefix string, i int) []byte {
	return strconv.AppendInt(append(dst, prefix...), int64(i+1), 10)
}

// key is a JSON member name: a constant, or one built in a scratch buffer.
type key interface{ string | []byte }

// The k* helpers append `"key":value,`; end replaces the trailing comma with the closing byte.

func appendKey[K key](b []byte, k K) []byte {
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func kstr[K key](b []byte, k K, v string) []byte {
	return append(appendString(appendKey(b, k), v), ',')
}

func kint[K key](b []byte, k K, v int64) []byte {
	return append(strconv.AppendInt(appendKey(b, k), v, 10), ',')
}

func kfloat[K key](b []byte, k K, v float64) []byte {
	return append(strconv.AppendFloat(appendKey(b, k), v, 'f', -1, 64), ',')
}

// kquoted appends a number as a string with an optional unit, as bmminer sends "GHS 5s":"104212.36".
func kquoted[K key](b []byte, k K, v float64, unit string) []byte {
	b = append(strconv.AppendFloat(append(appendKey(b, k), '"'), v, 'f', -1, 64), unit...)
	return append(b, '"', ',')
}

func kbool[K key](b []byte, k K, v bool) []byte {
	return append(strconv.AppendBool(appendKey(b, k), v), ',')
}

func end(b []byte, c byte) []byte {
	if n := len(b); n > 0 && b[n-1] == ',' {
		b[n-1] = c
		return b
	}
	return append(b, c)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return append(b, '"')
}
