package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What the bench reads of the operating system. Everything is Linux's /proc and getrusage; elsewhere the
// figures read 0 and the report says so through zero values.

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU is the user + system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU is the user + system CPU time of process pid so far, false if it cannot be read.
func pidCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command name (field
// 2) is in parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (time.Duration, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// rssBytes is this process's resident set (VmRSS), 0 if unknown.
func rssBytes() uint64 {
	return statusField("/proc/self/status", "VmRSS:")
}

// statusField reads a "Name:   1234 kB" line of a /proc status-like file, in bytes.
func statusField(path, name string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		fs := strings.Fields(line[len(name):])
		if len(fs) == 0 {
			return 0
		}
		v, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(fs) > 1 && fs[1] == "kB" {
			v *= 1024
		}
		return v
	}
	return 0
}

// machineTicks returns the busy and total CPU ticks of the whole machine (the "cpu" line of /proc/stat).
func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	return parseCPULine(string(line))
}

// parseCPULine reads "cpu user nice system idle iowait irq softirq steal …"; idle and iowait are not busy.
func parseCPULine(line string) (busy, total uint64) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total
}

// Machine describes the computer a report was measured on.
type Machine struct {
	Cores    int    `json:"cores"`
	MemBytes uint64 `json:"mem_bytes"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPU      string `json:"cpu,omitempty"`
	// MaxOpenFiles is this process's open-file limit (RLIMIT_NOFILE).
	MaxOpenFiles uint64 `json:"max_open_files"`
}

// ThisMachine describes the machine this process runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		MemBytes: statusField("/proc/meminfo", "MemTotal:")}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.MaxOpenFiles = rl.Cur
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// pidRSS is process pid's resident set, 0 if it cannot be read.
func pidRSS(pid int) uint64 { return statusField("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS:") }
