package commission

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the CommissionActor.
type Config struct {
	// PairConcurrency is how many devices of a pairing are tried at once. Default 16.
	PairConcurrency int
	// PairTimeout bounds pairing one device (connect, login, pair, first poll). Default 20s; the CommandGate's
	// command timeout must leave room for a pairing's devices at PairConcurrency.
	PairTimeout time.Duration
	// MaxDevicesPerEvent bounds the devices one EVENT_KIND_SCAN event carries; more are split over several
	// events. Default 500 (about 75 KiB).
	MaxDevicesPerEvent int
	// MaxErrorsPerEvent bounds the target errors one event carries (the counters still count them all).
	// Default 50.
	MaxErrorsPerEvent int
}

// Defaults; see Config.
const (
	DefaultPairConcurrency    = 16
	DefaultPairTimeout        = 20 * time.Second
	DefaultMaxDevicesPerEvent = 500
	DefaultMaxErrorsPerEvent  = 50
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{PairConcurrency: DefaultPairConcurrency, PairTimeout: DefaultPairTimeout,
		MaxDevicesPerEvent: DefaultMaxDevicesPerEvent, MaxErrorsPerEvent: DefaultMaxErrorsPerEvent}
}

// Validate reports settings an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.PairConcurrency < 1 || c.PairConcurrency > 1024 {
		errs = append(errs, fmt.Errorf("commission: PairConcurrency must be between 1 and 1024, got %d", c.PairConcurrency))
	}
	if c.PairTimeout <= 0 {
		errs = append(errs, fmt.Errorf("commission: PairTimeout must be positive, got %v", c.PairTimeout))
	}
	if c.MaxDevicesPerEvent < 1 || c.MaxErrorsPerEvent < 0 {
		errs = append(errs, errors.New("commission: MaxDevicesPerEvent must be positive and MaxErrorsPerEvent not negative"))
	}
	return errors.Join(errs...)
}
