package automation

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // policies name IANA zones; a node on a minimal image may have no zoneinfo
)

// wallClock is a local time of day.
type wallClock struct{ h, m int }

func parseWallClock(s string) (wallClock, error) {
	var c wallClock
	if len(s) != 5 || s[2] != ':' {
		return c, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	h, m := int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	for _, b := range []byte{s[0], s[1], s[3], s[4]} {
		if b < '0' || b > '9' {
			return c, fmt.Errorf("time of day %q: want HH:MM", s)
		}
	}
	if h > 23 || m > 59 {
		return c, fmt.Errorf("time of day %q: want 00:00 to 23:59", s)
	}
	return wallClock{h, m}, nil
}

func (c wallClock) minutes() int { return c.h*60 + c.m }

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// compiledSchedule is a Schedule ready to evaluate.
type compiledSchedule struct {
	loc        *time.Location
	start, end wallClock
	days       [7]bool
}

func compileSchedule(s Schedule) (compiledSchedule, error) {
	var c compiledSchedule
	if s.TimeZone == "" {
		return c, fmt.Errorf("no time zone (an IANA name such as America/New_York)")
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return c, fmt.Errorf("time zone %q: %v", s.TimeZone, err)
	}
	c.loc = loc
	if c.start, err = parseWallClock(s.Start); err != nil {
		return c, fmt.Errorf("start: %v", err)
	}
	if c.end, err = parseWallClock(s.End); err != nil {
		return c, fmt.Errorf("end: %v", err)
	}
	if c.start == c.end {
		return c, fmt.Errorf("start and end are both %s", s.Start)
	}
	if len(s.Days) == 0 {
		for i := range c.days {
			c.days[i] = true
		}
	}
	for _, d := range s.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return c, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat or sun", d)
		}
		c.days[wd] = true
	}
	return c, nil
}

// localInstant resolves a wall-clock time on a local date in loc. A time skipped by a daylight-saving change
// (02:30 on a spring-forward night) resolves to the instant the clocks jump (03:00 new time); a time that
// occurs twice (01:30 on a fall-back night) resolves to its first occurrence.
func localInstant(y int, mo time.Month, d int, c wallClock, loc *time.Location) time.Time {
	naive := time.Date(y, mo, d, c.h, c.m, 0, 0, time.UTC)
	// A zone changes offset at most once within a day or so: the offsets either side cover every candidate.
	var offs []int
	for _, probe := range []time.Time{naive.Add(-36 * time.Hour), naive, naive.Add(36 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		if !containsInt(offs, off) {
			offs = append(offs, off)
		}
	}
	var best time.Time
	for _, off := range offs {
		t := naive.Add(-time.Duration(off) * time.Second)
		if wall(t, loc).Equal(naive) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	// Skipped: the instant the local clock jumps past naive lies between the candidates; find it.
	lo, hi := naive.Add(-time.Duration(offs[0])*time.Second), naive.Add(-time.Duration(offs[0])*time.Second)
	for _, off := range offs[1:] {
		t := naive.Add(-time.Duration(off) * time.Second)
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	if !wall(lo, loc).Before(naive) || !wall(hi, loc).After(naive) {
		return time.Date(y, mo, d, c.h, c.m, 0, 0, loc) // not a gap after all; let the library decide
	}
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if wall(mid, loc).Before(naive) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// wall is t's local wall-clock reading in loc, as a UTC time (for comparing readings).
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// window is the schedule's window starting on the local date (y, mo, d), if it runs that day. A window whose
// end is at or before its start on the clock ends the next day. A window a DST change makes empty is skipped.
func (c compiledSchedule) window(y int, mo time.Month, d int) (start, end time.Time, ok bool) {
	date := time.Date(y, mo, d, 12, 0, 0, 0, time.UTC)
	if !c.days[date.Weekday()] {
		return start, end, false
	}
	start = localInstant(y, mo, d, c.start, c.loc)
	if c.end.minutes() <= c.start.minutes() {
		next := date.AddDate(0, 0, 1)
		y, mo, d = next.Date()
	}
	end = localInstant(y, mo, d, c.end, c.loc)
	return start, end, end.After(start)
}

// active returns the window containing now.
func (c compiledSchedule) active(now time.Time) (start, end time.Time, ok bool) {
	l := now.In(c.loc)
	for _, back := range []int{1, 0} {
		y, mo, d := time.Date(l.Year(), l.Month(), l.Day()-back, 12, 0, 0, 0, time.UTC).Date()
		if s, e, ok := c.window(y, mo, d); ok && !now.Before(s) && now.Before(e) {
			return s, e, true
		}
	}
	return start, end, false
}

// next returns the first window start or end strictly after now (within the coming eight days).
func (c compiledSchedule) next(now time.Time) (time.Time, bool) {
	l := now.In(c.loc)
	var best time.Time
	for k := -1; k <= 8; k++ {
		y, mo, d := time.Date(l.Year(), l.Month(), l.Day()+k, 12, 0, 0, 0, time.UTC).Date()
		s, e, ok := c.window(y, mo, d)
		if !ok {
			continue
		}
		for _, t := range []time.Time{s, e} {
			if t.After(now) && (best.IsZero() || t.Before(best)) {
				best = t
			}
		}
	}
	return best, !best.IsZero()
}
