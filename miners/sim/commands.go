package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// writeFunc performs a write command under the miner's lock and returns the reply's Code and Msg, and
// whether it was honoured (STATUS=S) or refused (STATUS=E). Codes and messages follow cgminer's api.c.
type writeFunc func(m *Miner, now time.Time, param string) (code int, msg string, ok bool)

var writeCommands map[string]writeFunc

func init() { // a map literal referring to methods that use it would be an initialization cycle
	writeCommands = map[string]writeFunc{
		"restart":      (*Miner).restart,
		"pause":        (*Miner).pause,
		"resume":       (*Miner).resume,
		"curtail":      (*Miner).curtail,
		"addpool":      (*Miner).addPool,
		"switchpool":   (*Miner).switchPool,
		"removepool":   (*Miner).removePool,
		"enablepool":   (*Miner).enablePool,
		"disablepool":  (*Miner).disablePool,
		"poolpriority": (*Miner).poolPriority,
	}
}

// restart answers, then the miner is unreachable for RebootDuration and comes back mining with uptime reset.
func (m *Miner) restart(time.Time, string) (int, string, bool) {
	m.rebooting = true
	m.listenLocked()
	m.rebootTimer = m.fleet.cfg.Clock.AfterFunc(m.fleet.cfg.RebootDuration, m.bootDone)
	return 7, "Restarting cgminer", true
}

func (m *Miner) bootDone() {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.rebooting, m.paused, m.sleeping = false, false, false
	m.bootAt, m.lastAdvance = now, now
	for i := range m.pools {
		m.pools[i].accepted, m.pools[i].rejected = 0, 0
	}
	m.listenLocked()
}

func (m *Miner) pause(time.Time, string) (int, string, bool) {
	m.paused = true
	return 132, "Mining paused", true
}

func (m *Miner) resume(time.Time, string) (int, string, bool) {
	m.paused = false
	return 133, "Mining resumed", true
}

// curtail is LuxOS's sleep/wakeup.
func (m *Miner) curtail(_ time.Time, param string) (int, string, bool) {
	switch param {
	case "sleep":
		m.sleeping = true
		return 134, "Curtail: sleeping", true
	case "wakeup":
		m.sleeping = false
		return 134, "Curtail: waking up", true
	}
	return 135, fmt.Sprintf("Invalid curtail parameter '%s', want sleep or wakeup", param), false
}

func (m *Miner) addPool(_ time.Time, param string) (int, string, bool) {
	if param == "" {
		return 52, "Missing addpool details", false
	}
	f := splitParams(param)
	if len(f) != 3 || f[0] == "" || f[1] == "" {
		return 53, fmt.Sprintf("Invalid addpool details '%s'", param), false
	}
	m.pools = append(m.pools, pool{url: f[0], user: f[1], pass: f[2], prio: len(m.pools)})
	return 55, fmt.Sprintf("Added pool %d: '%s'", len(m.pools)-1, f[0]), true
}

// poolID reads a pool number parameter.
func (m *Miner) poolID(param string) (int, int, string, bool) {
	if strings.TrimSpace(param) == "" {
		return 0, 25, "Missing pool id parameter", false
	}
	id, err := strconv.Atoi(strings.TrimSpace(param))
	if err != nil || id < 0 || id >= len(m.pools) {
		return 0, 26, fmt.Sprintf("Invalid pool id %s - range is 0 - %d", param, len(m.pools)-1), false
	}
	return id, 0, "", true
}

// switchPool enables pool id and gives it the best priority, the others keeping their order behind it.
func (m *Miner) switchPool(_ time.Time, param string) (int, string, bool) {
	id, code, msg, ok := m.poolID(param)
	if !ok {
		return code, msg, false
	}
	m.pools[id].disabled = false
	m.reprioritize([]int{id})
	return 27, fmt.Sprintf("Switching to pool %d: '%s'", id, m.pools[id].url), true
}

func (m *Miner) removePool(_ time.Time, param string) (int, string, bool) {
	id, code, msg, ok := m.poolID(param)
	switch {
	case !ok:
		return code, msg, false
	case len(m.pools) == 1:
		return 66, fmt.Sprintf("Cannot remove last pool %d:'%s'", id, m.pools[id].url), false
	case id == m.activeLocked():
		return 67, fmt.Sprintf("Cannot remove active pool %d:'%s'", id, m.pools[id].url), false
	}
	url := m.pools[id].url
	m.pools = slices.Delete(m.pools, id, id+1)
	m.reprioritize(nil)
	return 68, fmt.Sprintf("Removed pool %d:'%s'", id, url), true
}

func (m *Miner) enablePool(_ time.Time, param string) (int, string, bool) {
	id, code, msg, ok := m.poolID(param)
	if !ok {
		return code, msg, false
	}
	m.pools[id].disabled = false
	return 13, fmt.Sprintf("Enabling pool %d:'%s'", id, m.pools[id].url), true
}

func (m *Miner) disablePool(_ time.Time, param string) (int, string, bool) {
	id, code, msg, ok := m.poolID(param)
	if !ok {
		return code, msg, false
	}
	enabled := 0
	for _, p := range m.pools {
		if !p.disabled {
			enabled++
		}
	}
	if enabled == 1 && !m.pools[id].disabled {
		return 65, fmt.Sprintf("Cannot disable last active pool %d:'%s'", id, m.pools[id].url), false
	}
	m.pools[id].disabled = true
	return 48, fmt.Sprintf("Disabling pool %d:'%s'", id, m.pools[id].url), true
}

// poolPriority takes pool numbers best first ("2,0"); pools not listed keep their order after them.
func (m *Miner) poolPriority(_ time.Time, param string) (int, string, bool) {
	var order []int
	for _, f := range strings.Split(param, ",") {
		id, code, msg, ok := m.poolID(f)
		if !ok {
			return code, msg, false
		}
		if slices.Contains(order, id) {
			return 74, fmt.Sprintf("Duplicate pool specified %d", id), false
		}
		order = append(order, id)
	}
	m.reprioritize(order)
	return 73, "Changed pool priorities", true
}

// reprioritize gives first the best priorities, in order, and renumbers the rest 0…n-1 in their current
// priority order.
func (m *Miner) reprioritize(first []int) {
	rest := make([]int, 0, len(m.pools))
	for i := range m.pools {
		if !slices.Contains(first, i) {
			rest = append(rest, i)
		}
	}
	slices.SortStableFunc(rest, func(a, b int) int { return m.pools[a].prio - m.pools[b].prio })
	for prio, i := range append(slices.Clone(first), rest...) {
		m.pools[i].prio = prio
	}
}

// splitParams splits a cgminer parameter list on ',' with '\' escaping the next byte.
func splitParams(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}
