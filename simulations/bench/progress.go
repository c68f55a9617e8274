package bench

import (
	"fmt"
	"io"
	"sync"

	"github.com/hashfleet/hashfleet/actors/progress"
)

// Progress receives a suite's progress as it runs.
type Progress interface {
	// Stage announces the next stage of a suite ("start simulators", "node: measure 1m0s"): total units
	// of unit to do, 0 when unknown. It ends the stage before.
	Stage(suite, stage, unit string, total int64)
	// Update reports the units done in the current stage and a one-line status. Updates come often; the
	// receiver decides what to show.
	Update(done int64, status string)
}

// reporterProgress shows each stage with an actors/progress Reporter (a redrawn bar on a terminal, a line
// every 10 s and at each 10% elsewhere) and, when the stage ends, its last status line.
type reporterProgress struct {
	mu     sync.Mutex
	out    io.Writer
	tty    bool
	r      *progress.Reporter
	status string
}

func newReporterProgress(out io.Writer) *reporterProgress {
	return &reporterProgress{out: out, tty: progress.IsTerminal(out)}
}

func (p *reporterProgress) Stage(suite, stage, unit string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	p.r = progress.New(progress.Config{Label: suite + ": " + stage, Total: total, Unit: unit, Out: p.out, TTY: p.tty})
}

func (p *reporterProgress) Update(done int64, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
	p.r.Set(done)
}

// finish ends the last stage.
func (p *reporterProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *reporterProgress) finishLocked() {
	if p.r == nil {
		return
	}
	p.r.Finish(nil)
	p.r = nil
	if p.status != "" {
		fmt.Fprintf(p.out, "    %s\n", p.status)
		p.status = ""
	}
}

// discardProgress shows nothing.
type discardProgress struct{}

func (discardProgress) Stage(string, string, string, int64) {}
func (discardProgress) Update(int64, string)                {}
