package progress

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type harness struct {
	clk *clock.Fake
	out *bytes.Buffer
	r   *Reporter
}

func newHarness(cfg Config) *harness {
	h := &harness{clk: clock.NewFake(epoch), out: &bytes.Buffer{}}
	cfg.Clock, cfg.Out = h.clk, h.out
	h.r = New(cfg)
	return h
}

// lines returns the complete lines written so far and clears the buffer.
func (h *harness) lines() []string {
	s := h.out.String()
	h.out.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// run adds perSecond every second for d.
func (h *harness) run(perSecond int64, d time.Duration) {
	for range int(d / time.Second) {
		h.clk.Advance(time.Second)
		h.r.Add(perSecond)
	}
}

func TestLinesEveryTenPercent(t *testing.T) {
	h := newHarness(Config{Label: "discovery 10.0.0.0/24", Total: 200, Unit: "hosts", LineInterval: time.Hour})
	if got := h.lines(); got != nil {
		t.Fatalf("a line before any progress: %q", got)
	}
	h.clk.Advance(time.Second)
	h.r.Add(19)
	if got := h.lines(); got != nil {
		t.Fatalf("a line below 10%%: %q", got)
	}
	h.r.Add(1)
	got := h.lines()
	if len(got) != 1 || got[0] != "discovery 10.0.0.0/24: 10% 20/200 hosts, 20.0 hosts/s, elapsed 1s, ETA 9s" {
		t.Fatalf("10%% line: %q", got)
	}
	// A jump over several steps writes one line.
	h.clk.Advance(time.Second)
	h.r.Add(70)
	if got := h.lines(); len(got) != 1 || !strings.HasPrefix(got[0], "discovery 10.0.0.0/24: 45% 90/200 hosts") {
		t.Fatalf("jump to 45%%: %q", got)
	}
	// 100% is left to Finish.
	h.r.Add(110)
	if got := h.lines(); got != nil {
		t.Fatalf("a progress line at 100%%: %q", got)
	}
	h.clk.Advance(2 * time.Second)
	h.r.Finish(nil)
	if got := h.lines(); len(got) != 1 || got[0] != "discovery 10.0.0.0/24: done, 200/200 hosts in 4s (50.0 hosts/s)" {
		t.Fatalf("final line: %q", got)
	}
}

func TestLineEveryIntervalEvenWhenStalled(t *testing.T) {
	h := newHarness(Config{Label: "spool replay", Total: 1000, Unit: "batches", LineInterval: 10 * time.Second, RateWindow: 10 * time.Second})
	h.run(5, 10*time.Second) // 50 batches: under 10%; the 10 s line fires before the last Add
	got := h.lines()
	if len(got) != 1 || got[0] != "spool replay: 4% 45/1000 batches, 4.50 batches/s, elapsed 10s, ETA 3m32s" {
		t.Fatalf("first interval line: %q", got)
	}
	// Stalled: lines keep coming every 10 s; once the rate window holds no progress, the ETA is unknown.
	h.clk.Advance(10 * time.Second)
	h.clk.Advance(10 * time.Second)
	got = h.lines()
	if len(got) != 2 {
		t.Fatalf("stalled for 20s: %d lines %q, want 2", len(got), got)
	}
	if got[1] != "spool replay: 5% 50/1000 batches, 0.00 batches/s, elapsed 30s, ETA ?" {
		t.Fatalf("stalled line: %q", got[1])
	}
	// A 10% line resets the interval: the next periodic line is 10 s after it.
	h.clk.Advance(3 * time.Second)
	h.r.Add(50)
	if got := h.lines(); len(got) != 1 || !strings.HasPrefix(got[0], "spool replay: 10%") {
		t.Fatalf("10%% line: %q", got)
	}
	h.clk.Advance(9 * time.Second)
	if got := h.lines(); got != nil {
		t.Fatalf("periodic line 9s after the 10%% line: %q", got)
	}
	h.clk.Advance(time.Second)
	if got := h.lines(); len(got) != 1 {
		t.Fatalf("periodic line 10s after the 10%% line: %q", got)
	}
	h.r.Finish(errors.New("cloud refused batch 101: unauthenticated"))
	got = h.lines()
	if len(got) != 1 || got[0] != "spool replay: failed after 100/1000 batches in 43s: cloud refused batch 101: unauthenticated" {
		t.Fatalf("failure line: %q", got)
	}
	if n := h.clk.Pending(); n != 0 {
		t.Fatalf("%d timers armed after Finish", n)
	}
	h.r.Add(10)
	h.clk.Advance(time.Minute)
	h.r.Finish(nil)
	if got := h.lines(); got != nil {
		t.Fatalf("output after Finish: %q", got)
	}
}

func TestRateFollowsTheRecentWindow(t *testing.T) {
	h := newHarness(Config{Total: 10_000, RateWindow: 10 * time.Second, LineInterval: time.Hour})
	h.run(10, 20*time.Second)
	if s := h.r.Snapshot(); math.Abs(s.Rate-10) > 0.01 {
		t.Fatalf("steady 10/s: rate %v", s.Rate)
	}
	h.run(50, 20*time.Second) // 1200 done; the overall average would be 30/s
	s := h.r.Snapshot()
	if math.Abs(s.Rate-50) > 0.5 {
		t.Fatalf("after speeding up to 50/s: rate %v (overall average %v)", s.Rate, float64(s.Done)/s.Elapsed.Seconds())
	}
	if want := time.Duration(float64(10_000-1200) / s.Rate * float64(time.Second)); s.ETA != want || s.ETA < 170*time.Second || s.ETA > 180*time.Second {
		t.Fatalf("ETA %s, want %s (about 8800 / 50 = 176 s)", s.ETA, want)
	}
	if s.Done != 1200 || s.Total != 10_000 || s.Elapsed != 40*time.Second || s.Fraction() != 0.12 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestTTYRedrawsInPlace(t *testing.T) {
	h := newHarness(Config{Label: "reboot", Total: 40, Unit: "miners", TTY: true, Width: 10, RedrawInterval: 200 * time.Millisecond})
	first := h.out.String()
	if first != "\rreboot [>         ]   0%  0/40 miners  0.00 miners/s  ETA ?\x1b[K" {
		t.Fatalf("first draw %q", first)
	}
	h.out.Reset()
	// Many adds inside one redraw interval: one redraw.
	h.clk.Advance(time.Second) // the 1 s refresh redraws too
	h.out.Reset()
	for range 10 {
		h.r.Add(1)
		h.clk.Advance(10 * time.Millisecond)
	}
	if n := strings.Count(h.out.String(), "\r"); n != 0 {
		t.Fatalf("%d redraws within 200ms of the last, want 0: %q", n, h.out.String())
	}
	h.clk.Advance(200 * time.Millisecond)
	h.r.Add(10)
	out := h.out.String()
	if strings.Count(out, "\r") != 1 || strings.Contains(out, "\n") {
		t.Fatalf("redraw: %q", out)
	}
	if !strings.Contains(out, "reboot [=====>    ]  50%  20/40 miners") || !strings.HasSuffix(out, "\x1b[K") {
		t.Fatalf("redraw at 50%%: %q", out)
	}
	// Nothing added: the refresh still redraws each second (elapsed and ETA stay live).
	h.out.Reset()
	h.clk.Advance(3 * time.Second)
	if n := strings.Count(h.out.String(), "\r"); n != 3 {
		t.Fatalf("%d refreshes in 3s without progress, want 3", n)
	}
	h.out.Reset()
	h.r.Add(20)
	h.r.Finish(nil)
	out = h.out.String()
	if !strings.HasSuffix(out, "\rreboot [==========] done, 40/40 miners in 4s (9.30 miners/s)\x1b[K\n") {
		t.Fatalf("final TTY line: %q", out)
	}
}

func TestUnknownTotal(t *testing.T) {
	h := newHarness(Config{Label: "scan", LineInterval: 10 * time.Second})
	h.run(3, 10*time.Second)
	got := h.lines()
	if len(got) != 1 || got[0] != "scan: 27 items, 2.70 items/s, elapsed 10s" {
		t.Fatalf("unknown total: %q", got)
	}
	if s := h.r.Snapshot(); s.ETA != -1 || s.Fraction() != -1 {
		t.Fatalf("unknown total snapshot: %+v", s)
	}
	// The total becomes known later.
	h.r.SetTotal(60)
	h.clk.Advance(time.Second)
	h.r.Add(6)
	if got := h.lines(); len(got) != 1 || !strings.HasPrefix(got[0], "scan: 60% 36/60 items") {
		t.Fatalf("after SetTotal: %q", got)
	}
	h.r.Finish(nil)
}

func TestNilReporterDoesNothing(t *testing.T) {
	var r *Reporter
	r.Add(1)
	r.Set(2)
	r.SetTotal(3)
	r.Finish(nil)
	if s := r.Snapshot(); s.Done != 0 || s.ETA != -1 {
		t.Fatalf("nil snapshot %+v", s)
	}
}

func TestConcurrentAddsWithTheRealClock(t *testing.T) {
	var buf syncBuffer
	r := New(Config{Label: "bench", Total: 8000, Out: &buf, TTY: true, RedrawInterval: time.Millisecond})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				r.Add(1)
			}
		})
	}
	wg.Wait()
	r.Finish(nil)
	if s := r.Snapshot(); s.Done != 8000 || !s.Finished {
		t.Fatalf("snapshot %+v", s)
	}
	if !strings.Contains(buf.String(), "done, 8000/8000 items") {
		t.Fatalf("no final line in %q", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:                      "850ms",
		45 * time.Second:                            "45s",
		3*time.Minute + 5*time.Second:               "3m05s",
		2*time.Hour + 3*time.Minute + 9*time.Second: "2h03m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if formatETA(-1) != "?" || formatETA(300*time.Millisecond) != "<1s" {
		t.Error("formatETA")
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is not a terminal")
	}
}
