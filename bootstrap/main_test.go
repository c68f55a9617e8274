package bootstrap

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

func quietLogger() *slog.Logger {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
