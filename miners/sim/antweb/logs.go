package antweb

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// kernelLog is get_kernel_log.cgi: the miner's kernel and bmminer log as plain text.
func (m *Miner) kernelLog(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "[    0.000000] Booting Linux on physical CPU 0x0\n")
	fmt.Fprintf(&b, "[    1.204511] %s firmware %s serial %s\n", s.API.Model, s.API.Firmware, s.API.Serial)
	fmt.Fprintf(&b, "[    9.410230] bmminer: reboots since power on: %d\n", s.Reboots)
	for i, h := range s.API.BoardHashrateTHs {
		fmt.Fprintf(&b, "[   42.%06d] bmminer: chain %d: %.2f TH/s, temp %.1f C\n", i, i, h, s.API.BoardTemps[i])
	}
	fmt.Fprintf(&b, "[   60.000000] bmminer: fan control %s, pwm %d\n", map[bool]string{true: "manual", false: "auto"}[s.FanCtrl], s.FanPWM)
	body := b.String()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}
