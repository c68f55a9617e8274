package writelog

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func entry(node, miner string, epoch uint64, start, end time.Duration) Entry {
	return Entry{Node: node, Miner: miner, Command: "c", Action: "reboot", Epoch: epoch, Start: t0.Add(start),
		Finish: t0.Add(end), Code: "succeeded"}
}

func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Record(entry("a", "m", uint64(i), 0, time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if n := len(m.Entries()); n != 800 {
		t.Fatalf("%d entries", n)
	}
}

func TestFileRoundTripAndAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{entry("a", "m1", 3, 0, time.Second), {Node: "a", Miner: "m2", Command: "c2", Action: "set_power_target",
		Epoch: 3, Start: t0, Finish: t0, Code: CodeFenced, Error: "fenced: \"quoted\"\nnewline"}}
	for _, e := range want {
		f.Record(e)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.Record(entry("a", "m3", 3, 0, 1)) // after Close: dropped, no panic
	f2, err := OpenFile(path, nil)      // a restart appends
	if err != nil {
		t.Fatal(err)
	}
	f2.Record(entry("a", "m4", 4, 0, 1))
	_ = f2.Close()
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	for i, e := range want {
		if !got[i].Start.Equal(e.Start) || !got[i].Finish.Equal(e.Finish) {
			t.Fatalf("entry %d times %v %v", i, got[i].Start, got[i].Finish)
		}
		got[i].Start, got[i].Finish = e.Start, e.Finish
		if got[i] != e {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], e)
		}
	}
	if got[1].Wrote() || !got[0].Wrote() {
		t.Fatal("Wrote")
	}
}

// A process killed while writing leaves a torn last line: skipped. A bad line in the middle is corruption.
func TestReadTornAndCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	f, _ := OpenFile(path, nil)
	f.Record(entry("a", "m1", 1, 0, 1))
	_ = f.Close()
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(b, []byte(`{"node":"a","mi`)...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil || len(got) != 1 {
		t.Fatalf("torn tail: %v %v", got, err)
	}
	bad := string(b) + "garbage\n" + string(b)
	if _, err := Read(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt middle line: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file")
	}
}

func TestOverlapsAndSpan(t *testing.T) {
	s := time.Second
	es := []Entry{
		entry("a", "m1", 1, 0, 2*s),
		entry("a", "m1", 1, 1*s, 3*s),  // same node: never an overlap
		entry("b", "m1", 2, 4*s, 5*s),  // after a's last finish: fine
		entry("b", "m2", 2, 0, 10*s),   // other miner
		entry("a", "m2", 1, 9*s, 11*s), // overlaps b on m2
		{Node: "b", Miner: "m1", Epoch: 2, Start: t0.Add(s), Finish: t0.Add(s), Code: CodeFenced}, // refused: no write
	}
	ov := Overlaps(es)
	if len(ov) != 1 || ov[0].A.Miner != "m2" || ov[0].A.Node != "b" || ov[0].B.Node != "a" {
		t.Fatalf("overlaps %v", ov)
	}
	if !strings.Contains(ov[0].String(), "miner m2") {
		t.Fatal(ov[0].String())
	}
	first, last, ok := Span(es, "b")
	if !ok || !first.Equal(t0) || !last.Equal(t0.Add(10*s)) {
		t.Fatalf("span b %v %v %v", first, last, ok)
	}
	if _, _, ok := Span(es, "c"); ok {
		t.Fatal("span of a node without writes")
	}
}
