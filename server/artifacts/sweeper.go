package artifacts

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// SweeperConfig configures the Sweeper.
type SweeperConfig struct {
	Policy SweepPolicy
	// Every is the time between sweeps; the first runs at Start. Default 1h.
	Every time.Duration
	// InUse returns the sha256 of every artifact a command or rollout that has not finished still needs. An
	// error skips the sweep's blob removals (tmp and partial files are still swept). Required.
	InUse func() (map[string]bool, error)
	// Clock times the sweeps and is the sweep's now. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c SweeperConfig) Validate() error {
	var errs []error
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Every < time.Minute {
		errs = append(errs, fmt.Errorf("artifacts: sweep interval %s is below 1m", c.Every))
	}
	if c.InUse == nil {
		errs = append(errs, errors.New("artifacts: the sweeper needs InUse"))
	}
	return errors.Join(errs...)
}

// Sweeper runs the store's retention sweep on a schedule. It owns one goroutine, from Start to Stop.
type Sweeper struct {
	cfg   SweeperConfig
	store *Store
	log   *slog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu   sync.Mutex
	last SweepResult
	runs int
}

// NewSweeper returns a sweeper over st; zero fields of cfg take their defaults.
func NewSweeper(cfg SweeperConfig, st *Store) (*Sweeper, error) {
	if cfg.Policy == (SweepPolicy{}) {
		cfg.Policy = DefaultSweepPolicy()
	}
	if cfg.Every == 0 {
		cfg.Every = time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("artifacts: the sweeper needs a store")
	}
	return &Sweeper{cfg: cfg, store: st, log: cfg.Logger.With(slog.String("component", "artifact-sweeper")), stop: make(chan struct{})}, nil
}

// Start runs a sweep now and then every cfg.Every until Stop.
func (w *Sweeper) Start() {
	t := w.cfg.Clock.NewTicker(w.cfg.Every)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer t.Stop()
		w.SweepOnce()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C():
				w.SweepOnce()
			}
		}
	}()
}

// Stop ends the schedule and waits for a sweep in progress. Safe to call more than once, and without Start.
func (w *Sweeper) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// SweepOnce runs one sweep and returns what it did.
func (w *Sweeper) SweepOnce() SweepResult {
	used, err := w.cfg.InUse()
	inUse := func(sha string) bool { return used[sha] }
	p := w.cfg.Policy
	if err != nil {
		w.log.Warn("artifacts in use unknown: no blob removed this sweep", slog.Any("error", err))
		p.BlobAge, p.MaxBytes = -1, 0
		inUse = func(string) bool { return true }
	}
	r, err := w.store.Sweep(w.cfg.Clock.Now(), p, inUse)
	if err != nil {
		w.log.Error("artifact sweep incomplete", slog.Any("error", err))
	}
	if r.Tmp+r.Partial+r.Blobs > 0 {
		w.log.Info("artifacts swept", slog.Int("tmp", r.Tmp), slog.Int("partial", r.Partial), slog.Int("blobs", r.Blobs),
			slog.Int64("bytes_freed", r.BytesFreed), slog.Int("blobs_kept", r.BlobsKept), slog.Int64("bytes_kept", r.BytesKept))
	}
	w.mu.Lock()
	w.last, w.runs = r, w.runs+1
	w.mu.Unlock()
	return r
}

// Last returns the latest sweep's result and how many sweeps ran.
func (w *Sweeper) Last() (SweepResult, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.runs
}
