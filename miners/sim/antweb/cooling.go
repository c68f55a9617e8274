package antweb

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// fanChange is what a set_miner_conf.cgi body asks of the fans (nil fields: unchanged).
type fanChange struct {
	ctrl *bool
	pwm  *int
}

// fanParams reads bitmain-fan-ctrl (bool) and bitmain-fan-pwm (number or numeric string, 0..100).
func fanParams(conf map[string]json.RawMessage) (fanChange, error) {
	var c fanChange
	if raw, ok := conf["bitmain-fan-ctrl"]; ok {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return c, fmt.Errorf("bitmain-fan-ctrl %s is not a boolean", raw)
		}
		c.ctrl = &b
	}
	if raw, ok := conf["bitmain-fan-pwm"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 100 {
			return c, fmt.Errorf("bitmain-fan-pwm %s is not a percentage 0..100", raw)
		}
		c.pwm = &n
	}
	return c, nil
}

func (m *Miner) applyFan(c fanChange) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.ctrl != nil {
		m.fanCtrl = *c.ctrl
	}
	if c.pwm != nil {
		m.fanPWM = *c.pwm
	}
}

func (m *Miner) fanPWMLocked() int {
	if m.fanPWM < 0 {
		return 100
	}
	return m.fanPWM
}
