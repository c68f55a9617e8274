package bench

import (
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"sync/atomic"
	"time"
)

// recorder sees every poll of a run: when it started, how long it took, whether it failed. Only polls that
// start inside the window [ws, we) count; earlier ones only set the miner's last poll time.
//
// Each minerRec is written by whoever polls that miner, one poll at a time (the node's MinerActor, a naive
// goroutine, a bare-loop worker), and read by summarize once the poller has stopped.
type recorder struct {
	deadline int64 // ns; see Options.deadline
	ws, we   atomic.Int64
	miners   []minerRec
	index    map[string]int // miner id → index in miners
	latency  histogram

	polls, failed atomic.Int64   // inside the window
	all           atomic.Int64   // every poll, for progress
	maxGap        atomic.Int64   // longest gap between two polls of one miner ending in the window (ns)
	lateAt        []atomic.Int64 // late polls per lateSlice of the window, to tell a start-up transient from steady lag

	errMu  sync.Mutex
	errors []string // the first few distinct poll errors
}

type minerRec struct {
	last   int64 // start of the last poll (unix ns), 0 before the first
	polls  int32 // polls started in the window
	late   int32 // of which late
	missed int32 // deadlines passed without a poll, before polls inside the window
}

const keepErrors = 5

func newRecorder(devs []*pb.Device, deadline time.Duration) *recorder {
	r := &recorder{deadline: int64(deadline), miners: make([]minerRec, len(devs)), index: make(map[string]int, len(devs))}
	for i, d := range devs {
		r.index[d.GetMinerId()] = i
	}
	return r
}

// lateSlice is the span of one lateAt counter.
const lateSlice = 10 * time.Second

// setWindow fixes the window. Polls already running are counted by their start time.
func (r *recorder) setWindow(ws, we time.Time) {
	r.lateAt = make([]atomic.Int64, (we.Sub(ws)+lateSlice-1)/lateSlice)
	r.we.Store(we.UnixNano())
	r.ws.Store(ws.UnixNano())
}

// begin marks the start of a poll of miner i.
func (r *recorder) begin() time.Time { return time.Now() }

// done records the poll of miner i that began at start.
func (r *recorder) done(i int, start time.Time, err error) {
	lat := time.Since(start)
	r.all.Add(1)
	m := &r.miners[i]
	s, ws, we := start.UnixNano(), r.ws.Load(), r.we.Load()
	if ws != 0 && s >= ws && s < we {
		prev := m.last
		if prev == 0 {
			prev = ws // first poll ever, inside the window: count from the window's start
		}
		gap := s - prev
		if k := missedBetween(gap, r.deadline); k > 0 {
			m.late++
			m.missed += int32(k)
			r.lateAt[(s-ws)/int64(lateSlice)].Add(1)
		}
		r.noteGap(gap)
		m.polls++
		r.polls.Add(1)
		r.latency.add(lat)
		if err != nil {
			r.failed.Add(1)
			r.keepError(err)
		}
	}
	if (we == 0 || s < we) && s > m.last { // polls after the window must not hide what was owed at its end
		m.last = s
	}
}

func (r *recorder) noteGap(gap int64) {
	for {
		m := r.maxGap.Load()
		if gap <= m || r.maxGap.CompareAndSwap(m, gap) {
			return
		}
	}
}

func (r *recorder) keepError(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errors) < keepErrors {
		r.errors = append(r.errors, err.Error())
	}
}

// missedBetween is how many deadlines passed between two consecutive polls gap apart: 0 on time, 1 for a poll
// that came late, more when polls were skipped.
func missedBetween(gap, deadline int64) int64 {
	if gap <= deadline {
		return 0
	}
	return (gap+deadline-1)/deadline - 1 // the deadlines at prev+d, prev+2d, … before the poll: ⌈gap/d⌉ - 1
}

// owedAtEnd is how many deadlines have passed since a miner's last poll at the window's end.
func owedAtEnd(sinceLast, deadline int64) int64 {
	if sinceLast <= deadline {
		return 0
	}
	return sinceLast / deadline
}

// lateBySlice returns the late polls of each lateSlice of the window.
func (r *recorder) lateBySlice() []int64 {
	out := make([]int64, len(r.lateAt))
	for i := range r.lateAt {
		out[i] = r.lateAt[i].Load()
	}
	return out
}

// lagStats is the window's account of polls against the schedule.
type lagStats struct {
	polls, failed int64
	late          int64         // polls that started later than the deadline after the previous one
	lagPolls      int64         // deadlines that passed without a poll: late polls, skipped ones, still owed
	owedAtEnd     int64         // of which still owed when the window closed
	neverPolled   int64         // miners never polled at all
	laggingMiners int64         // miners that owed at least one poll
	maxGap        time.Duration // longest gap between two polls of one miner, or since the last one at the end
}

// summarize accounts the window; call it once the poller has stopped.
func (r *recorder) summarize() lagStats {
	ws, we := r.ws.Load(), r.we.Load()
	st := lagStats{polls: r.polls.Load(), failed: r.failed.Load(), maxGap: time.Duration(r.maxGap.Load())}
	for i := range r.miners {
		m := &r.miners[i]
		st.late += int64(m.late)
		owed := int64(m.missed)
		last := m.last
		if last == 0 {
			st.neverPolled++
			k := max(1, owedAtEnd(we-ws, r.deadline))
			owed += k
			st.owedAtEnd += k
		} else {
			since := we - last
			k := owedAtEnd(since, r.deadline)
			owed += k
			st.owedAtEnd += k
			st.maxGap = max(st.maxGap, time.Duration(since))
		}
		if owed > 0 {
			st.laggingMiners++
		}
		st.lagPolls += owed
	}
	return st
}
