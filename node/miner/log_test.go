package miner

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMinerLogPutsNodeAndMinerFirst(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := minerLog{l: l, node: "n1", miner: "m7"}
	m.Info("dropped: below the level", slog.Int("x", 1))
	m.Warn("poll failed", slog.String("error", "timeout"))
	m.Error("driver panicked", "panic", "boom")
	got := buf.String()
	for _, want := range []string{`msg="poll failed" node=n1 miner=m7 error=timeout`, `msg="driver panicked" node=n1 miner=m7 panic=boom`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "below the level") {
		t.Errorf("a record below the handler's level was written:\n%s", got)
	}
}
