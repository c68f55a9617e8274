package automation

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func compiled(t *testing.T, s Schedule) compiledSchedule {
	t.Helper()
	c, err := compileSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// The evening window keeps its local wall-clock times across both daylight-saving changes of 2026, in two
// zones that change on different dates, so its UTC instants move by an hour.
func TestScheduleWindowsAcrossDST(t *testing.T) {
	cases := []struct {
		zone       string
		date       string // local start date
		start, end string // wall clock
		wantStart  string // UTC
		wantEnd    string
	}{
		{"America/New_York", "2026-03-07", "17:00", "21:00", "2026-03-07 22:00", "2026-03-08 02:00"}, // EST
		{"America/New_York", "2026-03-08", "17:00", "21:00", "2026-03-08 21:00", "2026-03-09 01:00"}, // EDT from today
		{"America/New_York", "2026-10-31", "17:00", "21:00", "2026-10-31 21:00", "2026-11-01 01:00"}, // EDT
		{"America/New_York", "2026-11-01", "17:00", "21:00", "2026-11-01 22:00", "2026-11-02 02:00"}, // EST from today
		{"Europe/Berlin", "2026-03-28", "17:00", "21:00", "2026-03-28 16:00", "2026-03-28 20:00"},    // CET
		{"Europe/Berlin", "2026-03-29", "17:00", "21:00", "2026-03-29 15:00", "2026-03-29 19:00"},    // CEST
		{"Europe/Berlin", "2026-10-24", "17:00", "21:00", "2026-10-24 15:00", "2026-10-24 19:00"},    // CEST
		{"Europe/Berlin", "2026-10-25", "17:00", "21:00", "2026-10-25 16:00", "2026-10-25 20:00"},    // CET
		// Overnight windows through the change: 7 hours on the short night, 9 on the long one.
		{"America/New_York", "2026-03-07", "22:00", "06:00", "2026-03-08 03:00", "2026-03-08 10:00"},
		{"America/New_York", "2026-10-31", "22:00", "06:00", "2026-11-01 02:00", "2026-11-01 11:00"},
		{"Europe/Berlin", "2026-03-28", "22:00", "06:00", "2026-03-28 21:00", "2026-03-29 04:00"},
		{"Europe/Berlin", "2026-10-24", "22:00", "06:00", "2026-10-24 20:00", "2026-10-25 05:00"},
		// A start the clocks skip happens when they jump; one they repeat, the first time.
		{"America/New_York", "2026-03-08", "02:30", "04:00", "2026-03-08 07:00", "2026-03-08 08:00"},
		{"Europe/Berlin", "2026-03-29", "02:30", "04:00", "2026-03-29 01:00", "2026-03-29 02:00"},
		{"America/New_York", "2026-11-01", "01:30", "03:00", "2026-11-01 05:30", "2026-11-01 08:00"},
		{"Europe/Berlin", "2026-10-25", "02:30", "04:00", "2026-10-25 00:30", "2026-10-25 03:00"},
	}
	for _, c := range cases {
		cs := compiled(t, Schedule{ID: "s", TimeZone: c.zone, Start: c.start, End: c.end, Full: true})
		d, _ := time.Parse("2006-01-02", c.date)
		s, e, ok := cs.window(d.Year(), d.Month(), d.Day())
		if !ok || !s.Equal(utc(c.wantStart)) || !e.Equal(utc(c.wantEnd)) {
			t.Errorf("%s %s %s–%s: window %v – %v (%v), want %s – %s UTC", c.zone, c.date, c.start, c.end,
				s.UTC(), e.UTC(), ok, c.wantStart, c.wantEnd)
		}
	}
}

// Minute by minute through the change days, the evening window is active exactly when the local wall clock
// reads 17:00–20:59.
func TestScheduleActiveMatchesWallClock(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/Berlin"} {
		loc := mustLoc(t, zone)
		cs := compiled(t, Schedule{ID: "s", TimeZone: zone, Start: "17:00", End: "21:00", Full: true})
		for _, from := range []string{"2026-03-06 00:00", "2026-03-27 00:00", "2026-10-23 00:00", "2026-10-30 00:00"} {
			for now := utc(from); now.Before(utc(from).Add(4 * 24 * time.Hour)); now = now.Add(time.Minute) {
				h := now.In(loc).Hour()
				_, _, got := cs.active(now)
				if want := h >= 17 && h < 21; got != want {
					t.Fatalf("%s at %s (local %s): active %v", zone, now, now.In(loc), got)
				}
			}
		}
	}
}

func TestScheduleSkippedWindowAndDays(t *testing.T) {
	// 02:00–03:00 does not exist on the spring-forward night: no window that day.
	cs := compiled(t, Schedule{ID: "s", TimeZone: "America/New_York", Start: "02:00", End: "03:00", Full: true})
	if _, _, ok := cs.window(2026, time.March, 8); ok {
		t.Fatal("a window the clocks skip entirely ran")
	}
	if _, _, ok := cs.window(2026, time.March, 9); !ok {
		t.Fatal("the next day's window is missing")
	}
	wk := compiled(t, Schedule{ID: "s", TimeZone: "Europe/Berlin", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "17:00", End: "21:00", Full: true})
	if _, _, ok := wk.active(utc("2026-07-18 16:00")); ok { // a Saturday, 18:00 in Berlin
		t.Fatal("weekday schedule active on a Saturday")
	}
	if _, _, ok := wk.active(utc("2026-07-17 16:00")); !ok { // Friday
		t.Fatal("weekday schedule not active on a Friday")
	}
	// Friday's overnight window runs into Saturday.
	on := compiled(t, Schedule{ID: "s", TimeZone: "Europe/Berlin", Days: []string{"fri"}, Start: "22:00", End: "02:00", Full: true})
	if _, _, ok := on.active(utc("2026-07-17 23:30")); !ok { // Saturday 01:30 local
		t.Fatal("overnight window not active after midnight")
	}
}

func TestScheduleNextBoundary(t *testing.T) {
	cs := compiled(t, Schedule{ID: "s", TimeZone: "America/New_York", Start: "17:00", End: "21:00", Full: true})
	cases := []struct{ now, want string }{
		{"2026-03-08 20:59", "2026-03-08 21:00"}, // 16:59 EDT → 17:00
		{"2026-03-08 21:00", "2026-03-09 01:00"}, // at the start → the end
		{"2026-03-09 01:00", "2026-03-09 21:00"}, // at the end → tomorrow's start
		{"2026-11-01 12:00", "2026-11-01 22:00"}, // 07:00 EST
	}
	for _, c := range cases {
		if got, ok := cs.next(utc(c.now)); !ok || !got.Equal(utc(c.want)) {
			t.Errorf("next after %s: %v, want %s", c.now, got.UTC(), c.want)
		}
	}
}

func TestScheduleCompileErrors(t *testing.T) {
	for _, s := range []Schedule{
		{TimeZone: "Mars/Olympus", Start: "17:00", End: "21:00"},
		{TimeZone: "", Start: "17:00", End: "21:00"},
		{TimeZone: "UTC", Start: "24:00", End: "21:00"},
		{TimeZone: "UTC", Start: "5pm", End: "21:00"},
		{TimeZone: "UTC", Start: "17:00", End: "17:00"},
		{TimeZone: "UTC", Start: "17:00", End: "21:00", Days: []string{"someday"}},
	} {
		if _, err := compileSchedule(s); err == nil {
			t.Errorf("%+v compiled", s)
		}
	}
}
