package bootstrap

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/hashfleet/hashfleet/actors/actortest"
)

func quietLogger() *slog.Logger {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestMain fails the package when combined mode leaves goroutines behind after Stop.
func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }
