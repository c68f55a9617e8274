package bootstrap

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
)

// AdminTokenEnv is the environment variable the admin token is read from when no flag gives it.
const AdminTokenEnv = "HASHFLEET_ADMIN_TOKEN"

// ResolveAdminToken picks the API admin token: the flag, else $HASHFLEET_ADMIN_TOKEN, else a new random
// token (generated reports true so the caller prints it).
func ResolveAdminToken(flagValue string) (token string, generated bool, err error) {
	if t := strings.TrimSpace(flagValue); t != "" {
		return t, false, validateToken(t)
	}
	if t := strings.TrimSpace(os.Getenv(AdminTokenEnv)); t != "" {
		return t, false, validateToken(t)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	return "hf_" + base64.RawURLEncoding.EncodeToString(b), true, nil
}

func validateToken(t string) error {
	if len(t) < 16 {
		return fmt.Errorf("admin token is %d characters; use at least 16", len(t))
	}
	return nil
}

// NewLogger returns the process logger at the given level name (debug, info, warn, error).
func NewLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

// fxLogger keeps fx's own lifecycle chatter at debug level.
func fxLogger(log *slog.Logger) fx.Option {
	return fx.WithLogger(func() fxevent.Logger {
		l := &fxevent.SlogLogger{Logger: log.With(slog.String("lib", "fx"))}
		l.UseLogLevel(slog.LevelDebug)
		return l
	})
}
