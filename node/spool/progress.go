package spool

import (
	"fmt"
	"log/slog"
	"time"
)

// Progress is how far the current backlog has drained. A backlog begins when a batch enters an empty spool
// (or at Open, with what the last run left) and ends when the last batch is acked; Total is what was acked
// since it began plus what is still held, so it shrinks when batches are downsampled or dropped.
type Progress struct {
	// Acked and Total count items (samples and events).
	Acked, Total int64
	// AckedBatches and TotalBatches count batches.
	AckedBatches, TotalBatches int64
	// Since is when the backlog began.
	Since time.Time
	// Rate is the items acked per second since the first ack of this backlog (0 before two acks).
	Rate float64
}

// Done reports whether nothing is left to send.
func (p Progress) Done() bool { return p.Acked >= p.Total }

// Fraction is Acked/Total in [0, 1] (1 when there is nothing to send).
func (p Progress) Fraction() float64 {
	if p.Total <= 0 {
		return 1
	}
	return float64(p.Acked) / float64(p.Total)
}

// Remaining estimates the time to drain at the current rate; 0 when unknown or done.
func (p Progress) Remaining() time.Duration {
	if p.Rate <= 0 || p.Done() {
		return 0
	}
	return time.Duration(float64(p.Total-p.Acked) / p.Rate * float64(time.Second))
}

// String renders the progress for a status line: "replayed 120000/720000 items (16.7%, 24000/s, ~25s left)".
func (p Progress) String() string {
	s := fmt.Sprintf("replayed %d/%d items (%.1f%%", p.Acked, p.Total, 100*p.Fraction())
	if p.Rate > 0 {
		s += fmt.Sprintf(", %.0f/s", p.Rate)
		if r := p.Remaining(); r > 0 {
			s += fmt.Sprintf(", ~%s left", r.Round(time.Second))
		}
	}
	return s + ")"
}

type progress struct {
	since               time.Time
	acked, ackedBatches int64
	firstAck, lastAck   time.Time
	ackedSinceFirst     int64 // items acked after the first ack (the rate's numerator)
	lastLog             time.Time
	loggedThisBacklog   bool
}

func (p *progress) reset(now time.Time) { *p = progress{since: now} }

func (p *progress) ack(items int, now time.Time) {
	if p.firstAck.IsZero() {
		p.firstAck = now
	} else {
		p.ackedSinceFirst += int64(items)
	}
	p.lastAck = now
	p.acked += int64(items)
	p.ackedBatches++
}

func (p *progress) rate() float64 {
	d := p.lastAck.Sub(p.firstAck).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.ackedSinceFirst) / d
}

// Progress reports how far the current backlog has drained (for the CLI, the local UI and logs).
func (s *Spool) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progressLocked()
}

func (s *Spool) progressLocked() Progress {
	held := int64(s.lanes[0].items + s.lanes[1].items)
	heldBatches := int64(len(s.lanes[0].entries) + len(s.lanes[1].entries))
	return Progress{Acked: s.prog.acked, Total: s.prog.acked + held, AckedBatches: s.prog.ackedBatches,
		TotalBatches: s.prog.ackedBatches + heldBatches, Since: s.prog.since, Rate: s.prog.rate()}
}

// logProgress logs a draining backlog every ProgressLogInterval, and its end when it was logged before.
func (s *Spool) logProgress(now time.Time) {
	p := s.progressLocked()
	if p.Done() {
		if s.prog.loggedThisBacklog {
			s.log.Info("spool backlog drained", slog.Int64("items", p.Acked), slog.Int64("batches", p.AckedBatches),
				slog.Duration("took", now.Sub(s.prog.firstAck).Round(time.Millisecond)), slog.Float64("items_per_s", p.Rate))
		}
		s.prog.reset(now)
		return
	}
	if s.prog.lastLog.IsZero() {
		s.prog.lastLog = s.prog.firstAck
	}
	if now.Sub(s.prog.lastLog) < s.cfg.ProgressLogInterval {
		return
	}
	s.prog.lastLog, s.prog.loggedThisBacklog = now, true
	s.log.Info("spool replay", slog.Int64("acked", p.Acked), slog.Int64("total", p.Total),
		slog.String("progress", fmt.Sprintf("%.1f%%", 100*p.Fraction())), slog.Float64("items_per_s", p.Rate),
		slog.Duration("remaining", p.Remaining().Round(time.Second)))
}
