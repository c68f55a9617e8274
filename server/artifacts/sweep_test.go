package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
)

func putBlob(t *testing.T, s *Store, content string, used time.Time) string {
	t.Helper()
	m, err := s.Put(strings.NewReader(content), "")
	if err != nil {
		t.Fatal(err)
	}
	age(t, s.blobPath(m.SHA256), used)
	return m.SHA256
}

func age(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestSweepRemovesOnlyWhatIsStale(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := DefaultSweepPolicy()
	oldBlob := putBlob(t, s, "old firmware", now.Add(-91*24*time.Hour))
	usedBlob := putBlob(t, s, "old but a rollout still needs it", now.Add(-200*24*time.Hour))
	freshBlob := putBlob(t, s, "uploaded last week", now.Add(-7*24*time.Hour))
	readBlob := putBlob(t, s, "old, but a node fetched it today", now.Add(-120*24*time.Hour))
	f, _, err := s.Open(readBlob)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	foreign := filepath.Join(s.dir, "blobs", "README")
	if err := os.WriteFile(foreign, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	age(t, foreign, now.Add(-365*24*time.Hour))

	abandoned := s.partialPath("n1", "c1", oldBlob)
	resuming := s.partialPath("n2", "c2", freshBlob)
	for path, at := range map[string]time.Time{abandoned: now.Add(-25 * time.Hour), resuming: now.Add(-time.Hour)} {
		if err := os.WriteFile(path, []byte("half an upload"), 0o600); err != nil {
			t.Fatal(err)
		}
		age(t, path, at)
	}
	crashTmp, liveTmp := filepath.Join(s.dir, "tmp", "put-1"), filepath.Join(s.dir, "tmp", "put-2")
	for path, at := range map[string]time.Time{crashTmp: now.Add(-2 * time.Hour), liveTmp: now.Add(-time.Minute)} {
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		age(t, path, at)
	}

	r, err := s.Sweep(now, p, func(sha string) bool { return sha == usedBlob })
	if err != nil {
		t.Fatal(err)
	}
	if r.Tmp != 1 || r.Partial != 1 || r.Blobs != 1 || r.BlobsKept != 4 {
		t.Fatalf("result %+v", r)
	}
	for path, want := range map[string]bool{
		s.blobPath(oldBlob): false, s.blobPath(usedBlob): true, s.blobPath(freshBlob): true, s.blobPath(readBlob): true,
		foreign: true, abandoned: false, resuming: true, crashTmp: false, liveTmp: true,
	} {
		if exists(path) != want {
			t.Errorf("%s exists %v, want %v", path, !want, want)
		}
	}
	if _, err := s.Stat(oldBlob); !errors.Is(err, ErrNotFound) {
		t.Fatalf("swept blob: %v", err)
	}
}

func TestSweepCapsTotalSizeLeastRecentlyUsedFirst(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := DefaultSweepPolicy()
	p.BlobAge, p.MaxBytes = -1, 250                                     // no age limit; at most 250 bytes
	a := putBlob(t, s, strings.Repeat("a", 100), now.Add(-3*time.Hour)) // least recently used, but in use
	b := putBlob(t, s, strings.Repeat("b", 100), now.Add(-2*time.Hour))
	c := putBlob(t, s, strings.Repeat("c", 100), now.Add(-time.Hour))
	r, err := s.Sweep(now, p, func(sha string) bool { return sha == a })
	if err != nil {
		t.Fatal(err)
	}
	if r.Blobs != 1 || exists(s.blobPath(b)) || !exists(s.blobPath(a)) || !exists(s.blobPath(c)) || r.BytesKept != 200 {
		t.Fatalf("result %+v; a %v b %v c %v", r, exists(s.blobPath(a)), exists(s.blobPath(b)), exists(s.blobPath(c)))
	}
}

func TestSweepPolicyValidate(t *testing.T) {
	ok := DefaultSweepPolicy()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*SweepPolicy){
		"tmp age zero":      func(p *SweepPolicy) { p.TmpAge = 0 },
		"partial age 1s":    func(p *SweepPolicy) { p.PartialAge = time.Second },
		"blob age 1 minute": func(p *SweepPolicy) { p.BlobAge = time.Minute },
		"negative cap":      func(p *SweepPolicy) { p.MaxBytes = -1 },
	} {
		p := ok
		mut(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	neverAge := ok
	neverAge.BlobAge = -1
	if err := neverAge.Validate(); err != nil {
		t.Fatalf("blobs kept forever: %v", err)
	}
}

// TestSweeperSchedule: a sweep at Start and one per interval on the injected clock; when what is in use is
// unknown, no blob goes; Stop ends the goroutine.
func TestSweeperSchedule(t *testing.T) {
	defer actortest.VerifyNone(t)
	s, err := OpenStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	stale := putBlob(t, s, "stale", clk.Now().Add(-100*24*time.Hour))
	var inUseErr error = errors.New("command store unavailable")
	w, err := NewSweeper(SweeperConfig{Every: time.Hour, Clock: clk, InUse: func() (map[string]bool, error) {
		return nil, inUseErr
	}}, s)
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Stop()
	waitRuns(t, w, 1)
	if !exists(s.blobPath(stale)) {
		t.Fatal("a blob went while what is in use was unknown")
	}
	inUseErr = nil // read by the sweeper's goroutine only after the clock advances below
	clk.Advance(time.Hour)
	waitRuns(t, w, 2)
	if exists(s.blobPath(stale)) {
		t.Fatal("the stale blob survived the second sweep")
	}
	w.Stop()
	w.Stop()
}

func waitRuns(t *testing.T, w *Sweeper, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, runs := w.Last(); runs >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("fewer than %d sweeps", n)
}

func TestNewSweeperRefusesBadConfig(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	inUse := func() (map[string]bool, error) { return nil, nil }
	for name, c := range map[string]SweeperConfig{
		"no InUse":       {},
		"every second":   {InUse: inUse, Every: time.Second},
		"bad policy age": {InUse: inUse, Policy: SweepPolicy{TmpAge: time.Second, PartialAge: time.Hour, BlobAge: -1}},
	} {
		if _, err := NewSweeper(c, s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewSweeper(SweeperConfig{InUse: inUse}, nil); err == nil {
		t.Error("no store: accepted")
	}
}
