package node

import (
	"log/slog"
	"runtime/debug"
)

// memoryLimit applies Config.MemoryLimit while the node runs and restores the runtime's former limit at stop.
type memoryLimit struct {
	prev int64
	set  bool
}

func (m *memoryLimit) apply(limit int64, log *slog.Logger) {
	if limit <= 0 || m.set {
		return
	}
	m.prev, m.set = debug.SetMemoryLimit(limit), true
	log.Info("Go memory limit set", slog.Int64("bytes", limit), slog.Int64("was", m.prev))
}

func (m *memoryLimit) restore() {
	if m.set {
		debug.SetMemoryLimit(m.prev)
		m.set = false
	}
}
