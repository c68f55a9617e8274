// Package progress reports the progress of long CLI work: discovery scans, bulk commands, spool replay,
// backups, simulations and benchmarks.
//
// A Reporter counts work done against a total (or an unknown total) and writes to one io.Writer:
//
//	on a terminal (Config.TTY):  redraws one line in place with \r, at most every RedrawInterval and once a
//	                             second while nothing moves, so elapsed time and ETA stay live:
//	    discovery 10.0.0.0/22 [=============>                ]  45%  461/1024 hosts  12.3 hosts/s  ETA 46s
//
//	elsewhere (logs, pipes, CI):  a whole line every LineInterval (default 10 s) and at each 10% step:
//	    discovery 10.0.0.0/22: 45% 461/1024 hosts, 12.3 hosts/s, elapsed 37s, ETA 46s
//
// and a final line from Finish ("done" with the average rate, or "failed after ..." with the error).
//
// Time comes from an injected clock.Clock; the reporter starts no goroutine of its own (its periodic redraw
// is a clock.AfterFunc, which the fake clock runs inside Advance), so tests drive it with clock.Fake and a
// bytes.Buffer. The rate is measured over the last RateWindow (default 10 s), so the ETA follows a scan that
// speeds up or stalls. Add is safe from many goroutines. A nil *Reporter does nothing, so callers pass nil
// when progress is off.
package progress
