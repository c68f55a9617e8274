package progress

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config configures a Reporter.
type Config struct {
	// Label names the work ("discovery 10.0.0.0/22", "spool replay").
	Label string
	// Total is the amount of work; 0 when unknown (no percentage, bar or ETA). SetTotal changes it later.
	Total int64
	// Unit is the plural noun counted ("hosts", "miners", "batches"). Default "items".
	Unit string
	// Out receives the output. Nil writes nothing (Snapshot still works).
	Out io.Writer
	// TTY redraws one line in place; false writes whole lines (logs, pipes). IsTerminal(os.Stderr) decides
	// for a CLI.
	TTY bool
	// Clock is the time source. Default the wall clock.
	Clock clock.Clock
	// LineInterval: without a TTY, a line at least this often while the work runs (besides every 10% step).
	// Default 10s.
	LineInterval time.Duration
	// RedrawInterval: on a TTY, the least time between two redraws caused by Add. Default 200ms. The line is
	// also redrawn every second while nothing is added.
	RedrawInterval time.Duration
	// RateWindow is the span the rate (and so the ETA) is measured over. Default 10s.
	RateWindow time.Duration
	// Width of the bar in characters. Default 30.
	Width int
}

const ttyRefresh = time.Second

func (c Config) withDefaults() Config {
	if c.Unit == "" {
		c.Unit = "items"
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.LineInterval <= 0 {
		c.LineInterval = 10 * time.Second
	}
	if c.RedrawInterval <= 0 {
		c.RedrawInterval = 200 * time.Millisecond
	}
	if c.RateWindow <= 0 {
		c.RateWindow = 10 * time.Second
	}
	if c.Width <= 0 {
		c.Width = 30
	}
	return c
}

// IsTerminal reports whether w is a character device (a terminal) and TERM is not "dumb".
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Snapshot is the progress at one instant.
type Snapshot struct {
	Label string
	Unit  string
	// Done and Total (0: unknown) in Unit.
	Done, Total int64
	// Elapsed since New.
	Elapsed time.Duration
	// Rate in Unit per second over the rate window (0 before anything is measured).
	Rate float64
	// ETA is the time left at Rate; -1 when unknown (no total, or no rate yet).
	ETA time.Duration
	// Finished is set by Finish; Err is what it was given.
	Finished bool
	Err      error
}

// Fraction is Done/Total in [0, 1], or -1 when the total is unknown.
func (s Snapshot) Fraction() float64 {
	if s.Total <= 0 {
		return -1
	}
	return math.Min(1, math.Max(0, float64(s.Done)/float64(s.Total)))
}

type sample struct {
	at   time.Time
	done int64
}

// Reporter reports one piece of work. Make it with New and end it with Finish.
type Reporter struct {
	cfg   Config
	start time.Time

	mu         sync.Mutex
	done       int64
	total      int64
	samples    []sample
	lastDraw   time.Time // TTY: last redraw
	lastLine   time.Time // no TTY: last line written
	lastDecile int64
	timer      clock.Timer
	finished   bool
	err        error
}

// New starts reporting: the clock starts now.
func New(cfg Config) *Reporter {
	cfg = cfg.withDefaults()
	now := cfg.Clock.Now()
	r := &Reporter{cfg: cfg, start: now, total: max(cfg.Total, 0), samples: []sample{{at: now}}, lastLine: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg.TTY {
		r.drawLocked(now)
	}
	r.armLocked(now)
	return r
}

// Add counts n more units done.
func (r *Reporter) Add(n int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(r.done + n)
}

// Set sets the units done (e.g. from a replay's position).
func (r *Reporter) Set(done int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(done)
}

// SetTotal sets the total (0: unknown), for work whose size is learnt as it goes.
func (r *Reporter) SetTotal(total int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total = max(total, 0)
	r.lastDecile = r.decileLocked()
}

func (r *Reporter) setLocked(done int64) {
	if r.finished {
		return
	}
	r.done = max(done, 0)
	now := r.cfg.Clock.Now()
	r.sampleLocked(now)
	if r.cfg.TTY {
		if now.Sub(r.lastDraw) >= r.cfg.RedrawInterval {
			r.drawLocked(now)
		}
		return
	}
	// A line at each new 10% step (the 100% one is Finish's).
	if d := r.decileLocked(); d > r.lastDecile {
		r.lastDecile = d
		if d < 10 {
			r.lineLocked(now)
		}
	}
}

// decileLocked is the completed 10% steps (0..10), 0 without a total.
func (r *Reporter) decileLocked() int64 {
	if r.total <= 0 {
		return 0
	}
	return min(10, r.done*10/r.total)
}

// sampleLocked records (now, done) for the rate, keeping one sample at or before the window's start.
func (r *Reporter) sampleLocked(now time.Time) {
	// Samples stay at least RateWindow/20 apart: the newest moves forward until it is that far from the one
	// before, then a new one starts.
	if n := len(r.samples); n >= 2 && now.Sub(r.samples[n-2].at) < r.cfg.RateWindow/20 {
		r.samples[n-1] = sample{at: now, done: r.done}
	} else {
		r.samples = append(r.samples, sample{at: now, done: r.done})
	}
	from := now.Add(-r.cfg.RateWindow)
	i := 0
	for i+1 < len(r.samples) && !r.samples[i+1].at.After(from) {
		i++
	}
	r.samples = r.samples[i:]
}

// Snapshot returns the progress now.
func (r *Reporter) Snapshot() Snapshot {
	if r == nil {
		return Snapshot{ETA: -1}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked(r.cfg.Clock.Now())
}

func (r *Reporter) snapshotLocked(now time.Time) Snapshot {
	s := Snapshot{Label: r.cfg.Label, Unit: r.cfg.Unit, Done: r.done, Total: r.total, Elapsed: now.Sub(r.start),
		ETA: -1, Finished: r.finished, Err: r.err}
	if r.finished {
		if sec := s.Elapsed.Seconds(); sec > 0 {
			s.Rate = float64(r.done) / sec
		}
		s.ETA = 0
		return s
	}
	oldest := r.samples[0]
	if span := now.Sub(oldest.at).Seconds(); span > 0 {
		s.Rate = float64(r.done-oldest.done) / span
	}
	if r.total > 0 && s.Rate > 0 {
		left := float64(max(r.total-r.done, 0)) / s.Rate
		s.ETA = time.Duration(math.Min(left, float64(math.MaxInt64/2)/1e9) * float64(time.Second))
	}
	return s
}

// Finish ends the report with a final line: done, or failed with err. Later calls do nothing.
func (r *Reporter) Finish(err error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	now := r.cfg.Clock.Now()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.finished, r.err = true, err
	s := r.snapshotLocked(now)
	var b strings.Builder
	if r.cfg.TTY {
		b.WriteString("\r")
		b.WriteString(r.cfg.Label)
		if s.Total > 0 && err == nil {
			b.WriteString(" " + r.bar(s.Fraction()))
		}
		b.WriteString(" ")
	} else {
		b.WriteString(r.cfg.Label + ": ")
	}
	if err != nil {
		fmt.Fprintf(&b, "failed after %s in %s: %v", r.count(s), formatDuration(s.Elapsed), err)
	} else {
		fmt.Fprintf(&b, "done, %s in %s (%s)", r.count(s), formatDuration(s.Elapsed), r.rate(s.Rate))
	}
	if r.cfg.TTY {
		b.WriteString("\x1b[K")
	}
	b.WriteString("\n")
	_, _ = io.WriteString(r.cfg.Out, b.String())
}

// armLocked schedules the next periodic redraw (TTY) or line (no TTY).
func (r *Reporter) armLocked(now time.Time) {
	d := ttyRefresh
	if !r.cfg.TTY {
		d = max(r.lastLine.Add(r.cfg.LineInterval).Sub(now), time.Millisecond)
	}
	r.timer = r.cfg.Clock.AfterFunc(d, r.onTimer)
}

func (r *Reporter) onTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	now := r.cfg.Clock.Now()
	r.sampleLocked(now)
	if r.cfg.TTY {
		r.drawLocked(now)
	} else if now.Sub(r.lastLine) >= r.cfg.LineInterval {
		r.lineLocked(now)
	}
	r.armLocked(now)
}

// drawLocked redraws the TTY line.
func (r *Reporter) drawLocked(now time.Time) {
	s := r.snapshotLocked(now)
	var b strings.Builder
	b.WriteString("\r" + r.cfg.Label)
	if s.Total > 0 {
		fmt.Fprintf(&b, " %s %3.0f%%  %d/%d %s", r.bar(s.Fraction()), math.Floor(s.Fraction()*100), s.Done, s.Total, r.cfg.Unit)
	} else {
		fmt.Fprintf(&b, "  %d %s", s.Done, r.cfg.Unit)
	}
	fmt.Fprintf(&b, "  %s", r.rate(s.Rate))
	if s.Total > 0 {
		fmt.Fprintf(&b, "  ETA %s", formatETA(s.ETA))
	} else {
		fmt.Fprintf(&b, "  %s", formatDuration(s.Elapsed))
	}
	b.WriteString("\x1b[K")
	_, _ = io.WriteString(r.cfg.Out, b.String())
	r.lastDraw = now
}

// lineLocked writes one whole progress line (no TTY).
func (r *Reporter) lineLocked(now time.Time) {
	s := r.snapshotLocked(now)
	var b strings.Builder
	b.WriteString(r.cfg.Label + ": ")
	if s.Total > 0 {
		fmt.Fprintf(&b, "%.0f%% ", math.Floor(s.Fraction()*100))
	}
	fmt.Fprintf(&b, "%s, %s, elapsed %s", r.count(s), r.rate(s.Rate), formatDuration(s.Elapsed))
	if s.Total > 0 {
		fmt.Fprintf(&b, ", ETA %s", formatETA(s.ETA))
	}
	b.WriteString("\n")
	_, _ = io.WriteString(r.cfg.Out, b.String())
	r.lastLine = now
}

func (r *Reporter) count(s Snapshot) string {
	if s.Total > 0 {
		return fmt.Sprintf("%d/%d %s", s.Done, s.Total, r.cfg.Unit)
	}
	return fmt.Sprintf("%d %s", s.Done, r.cfg.Unit)
}

func (r *Reporter) rate(perSec float64) string {
	return formatRate(perSec) + " " + r.cfg.Unit + "/s"
}

// bar is "[=====>     ]" for a fraction in [0, 1].
func (r *Reporter) bar(f float64) string {
	w := r.cfg.Width
	full := int(f * float64(w))
	switch {
	case full >= w:
		return "[" + strings.Repeat("=", w) + "]"
	case full <= 0:
		return "[>" + strings.Repeat(" ", w-1) + "]"
	}
	return "[" + strings.Repeat("=", full) + ">" + strings.Repeat(" ", w-full-1) + "]"
}

// formatRate shows three significant figures at most: 1234, 123, 12.3, 1.23, 0.12.
func formatRate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// formatDuration is "850ms", "45s", "3m05s", "2h03m".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

func formatETA(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	if d > 0 && d < time.Second {
		return "<1s"
	}
	return formatDuration(d)
}
