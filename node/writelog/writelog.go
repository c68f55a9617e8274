package writelog

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// FileName is the write log's file in a node's data directory.
const FileName = "miner-writes.jsonl"

// Entry is one write a node made (or refused to make) to one miner.
type Entry struct {
	Node    string `json:"node"`
	Miner   string `json:"miner"`
	Command string `json:"command"`
	// Action is the command's action (pb.Action name without its prefix, lower case).
	Action string `json:"action"`
	// Epoch is the lease epoch the write was made under (0: the node is not in a pair).
	Epoch uint64 `json:"epoch"`
	// Start is when the write was checked and began; Finish when its I/O ended (node clock).
	Start  time.Time `json:"start"`
	Finish time.Time `json:"finish"`
	// Code is the outcome (result code name without its prefix, lower case): "fenced" for a write refused
	// at its start because the node may not write (no I/O was made).
	Code  string `json:"code"`
	Error string `json:"error,omitempty"`
}

// Wrote reports whether the entry is a write that reached for the miner (not refused at its start).
func (e Entry) Wrote() bool { return e.Code != CodeFenced }

// CodeFenced is Entry.Code for a write refused by the lease.
const CodeFenced = "fenced"

// Log receives every write. Implementations must be safe for concurrent use and must not block for long
// (they are called from the I/O workers, after the write).
type Log interface {
	Record(Entry)
}

// Memory keeps entries in memory: the in-memory twin for tests and simulations.
type Memory struct {
	mu      sync.Mutex
	entries []Entry
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{} }

// Record appends e.
func (m *Memory) Record(e Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
}

// Entries returns a copy of every entry, in the order recorded.
func (m *Memory) Entries() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.entries)
}

// File appends one JSON line per write to a file through a slog JSON handler: the production log, read back
// with ReadFile.
type File struct {
	path string

	mu     sync.Mutex
	f      *os.File
	log    *slog.Logger
	closed bool
	errLog *slog.Logger
}

// OpenFile opens (creating or appending to) the write log at path. errLog receives write failures (nil:
// slog.Default()).
func OpenFile(path string, errLog *slog.Logger) (*File, error) {
	if errLog == nil {
		errLog = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("write log %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write log %s: %w", path, err)
	}
	h := slog.NewJSONHandler(f, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
			return slog.Attr{} // the entry is the line
		}
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // Start/Finish are the times that matter
		}
		return a
	}})
	return &File{path: path, f: f, log: slog.New(h), errLog: errLog}, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Record writes e as one line. A closed File drops it.
func (f *File) Record(e Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.log.LogAttrs(context.Background(), slog.LevelInfo, "",
		slog.String("node", e.Node), slog.String("miner", e.Miner), slog.String("command", e.Command),
		slog.String("action", e.Action), slog.Uint64("epoch", e.Epoch),
		slog.String("start", e.Start.Format(time.RFC3339Nano)), slog.String("finish", e.Finish.Format(time.RFC3339Nano)),
		slog.String("code", e.Code), slog.String("error", e.Error))
}

// Close syncs and closes the file; later Records are dropped.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return errors.Join(f.f.Sync(), f.f.Close())
}

// ReadFile parses a write log. A torn last line (a process killed while writing it) is skipped; any other
// unreadable line is an error naming it.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("write log %s: %w", path, err)
	}
	defer f.Close()
	return Read(f)
}

// Read parses write-log lines from r (see ReadFile).
func Read(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line, bad := 0, 0
	var badErr error
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if bad > 0 { // a bad line followed by more lines was not a torn tail
			return out, badErr
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			bad, badErr = line, fmt.Errorf("%w: line %d: %w", ErrCorrupt, line, err)
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// ErrCorrupt: a write log line cannot be parsed.
var ErrCorrupt = errors.New("write log corrupt")

// Overlap is two writes by different nodes to one miner whose [Start, Finish] intervals intersect.
type Overlap struct {
	A, B Entry
}

func (o Overlap) String() string {
	return fmt.Sprintf("miner %s: %s (epoch %d) %s–%s overlaps %s (epoch %d) %s–%s", o.A.Miner,
		o.A.Node, o.A.Epoch, o.A.Start.Format(time.RFC3339Nano), o.A.Finish.Format(time.RFC3339Nano),
		o.B.Node, o.B.Epoch, o.B.Start.Format(time.RFC3339Nano), o.B.Finish.Format(time.RFC3339Nano))
}

// Overlaps returns every pair of writes (Wrote) by two different nodes to the same miner whose intervals
// intersect: what fencing must make impossible.
func Overlaps(entries []Entry) []Overlap {
	byMiner := map[string][]Entry{}
	for _, e := range entries {
		if e.Wrote() {
			byMiner[e.Miner] = append(byMiner[e.Miner], e)
		}
	}
	var out []Overlap
	for _, es := range byMiner {
		slices.SortFunc(es, func(a, b Entry) int { return a.Start.Compare(b.Start) })
		for i := range es {
			for j := i + 1; j < len(es) && !es[j].Start.After(es[i].Finish); j++ {
				if es[i].Node != es[j].Node {
					out = append(out, Overlap{A: es[i], B: es[j]})
				}
			}
		}
	}
	return out
}

// Span returns the first Start and last Finish of node's writes (Wrote); ok is false when it made none.
func Span(entries []Entry, node string) (first, last time.Time, ok bool) {
	for _, e := range entries {
		if e.Node != node || !e.Wrote() {
			continue
		}
		if !ok || e.Start.Before(first) {
			first = e.Start
		}
		if !ok || e.Finish.After(last) {
			last = e.Finish
		}
		ok = true
	}
	return first, last, ok
}
