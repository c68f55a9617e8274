package users

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"golang.org/x/crypto/bcrypt"
)

// Config configures users, sessions and login limits. Zero fields take the defaults documented on each.
type Config struct {
	// BcryptCost is the password hash cost. Default bcrypt.DefaultCost (10: about 60 ms a login on one core).
	BcryptCost int
	// SessionTTL is a session's absolute lifetime. Default 12h.
	SessionTTL time.Duration
	// SessionIdle ends a session unused this long. Default 1h.
	SessionIdle time.Duration
	// MaxSessions bounds live sessions; the oldest is dropped beyond it. Default 10,000.
	MaxSessions int
	// LoginFailures is how many failed logins one user name, or one client address, may make within
	// LoginWindow before logins for it are refused for LoginLockout. Default 5.
	LoginFailures int
	// LoginWindow: failures older than this are forgotten. Default 15m.
	LoginWindow time.Duration
	// LoginLockout is how long logins are refused after LoginFailures failures; it doubles with each further
	// lockout inside the window, up to 16× . Default 1m.
	LoginLockout time.Duration
	// MinPasswordLen is the shortest password accepted for a new user. Default 12.
	MinPasswordLen int
	// Clock is business time: session expiry and login limits. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{BcryptCost: bcrypt.DefaultCost, SessionTTL: 12 * time.Hour, SessionIdle: time.Hour, MaxSessions: 10_000,
		LoginFailures: 5, LoginWindow: 15 * time.Minute, LoginLockout: time.Minute, MinPasswordLen: 12, Clock: clock.Real()}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BcryptCost == 0 {
		c.BcryptCost = d.BcryptCost
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = d.SessionIdle
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = d.MaxSessions
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = d.LoginFailures
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = d.LoginWindow
	}
	if c.LoginLockout == 0 {
		c.LoginLockout = d.LoginLockout
	}
	if c.MinPasswordLen == 0 {
		c.MinPasswordLen = d.MinPasswordLen
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration an operator must fix (zero fields are valid: they take defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("users: bcrypt cost %d outside [%d, %d]", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.SessionTTL < time.Minute || c.SessionIdle < time.Minute || c.SessionIdle > c.SessionTTL {
		errs = append(errs, fmt.Errorf("users: session TTL %s and idle %s must be at least 1m, idle at most the TTL", c.SessionTTL, c.SessionIdle))
	}
	if c.MaxSessions < 1 {
		errs = append(errs, fmt.Errorf("users: max sessions %d must be at least 1", c.MaxSessions))
	}
	if c.LoginFailures < 1 || c.LoginWindow <= 0 || c.LoginLockout <= 0 {
		errs = append(errs, fmt.Errorf("users: login failures %d, window %s and lockout %s must be positive", c.LoginFailures, c.LoginWindow, c.LoginLockout))
	}
	if c.MinPasswordLen < 8 {
		errs = append(errs, fmt.Errorf("users: minimum password length %d is below 8", c.MinPasswordLen))
	}
	return errors.Join(errs...)
}
