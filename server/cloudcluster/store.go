package cloudcluster

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// NodeStore is what Node grains persist: the per-node seq counter, queue and sent log, and telemetry
// deduplicated by batch seq. Shared by every member (server/pgstore.Store), so a grain re-activated on
// another member continues from the same counter and queue.
type NodeStore interface {
	// IssueOnce allocates the node's next seq (strictly above every seq allocated before, by any member),
	// builds the command for it and persists it in the node's queue, atomically. A command id already
	// issued to the node returns the earlier command and existed=true, allocating nothing.
	IssueOnce(node, commandID string, build func(seq uint64) (*pb.ControlCommand, error)) (cmd *pb.ControlCommand, existed bool, err error)
	// Dequeue removes commands from the node's queue (final report or refusal).
	Dequeue(node string, seqs ...uint64) error
	// NodeQueue returns the node's last allocated seq and its queued commands in seq order.
	NodeQueue(node string) (uint64, []*pb.ControlCommand, error)
	// RaiseSeq raises the node's counter to seq if it is below (a node whose mark is ahead).
	RaiseSeq(node string, seq uint64) error
	// ApplyOnce writes b if b.Mark is above the stored mark of its node and kind, raising the mark in the
	// same transaction; otherwise it writes nothing and reports a duplicate. b.Mark is required.
	ApplyOnce(b store.Batch) (duplicate bool, err error)
}

// Local adapts the single-member store (server/store.Store, Badger) to NodeStore. Seq allocation and
// dedup are serialized by a mutex: correct within one process only, which is all a Badger store can serve.
type Local struct {
	mu sync.Mutex
	st store.Store
}

var _ NodeStore = (*Local)(nil)

// NewLocal wraps st.
func NewLocal(st store.Store) *Local { return &Local{st: st} }

// localLookback is how many of a node's latest sent commands Local searches for a command id issued again
// (the Badger store keeps sent commands by seq only; a retry comes within seconds, a few seqs later).
const localLookback = 256

// IssueOnce implements NodeStore. A command id is found again among the node's localLookback latest sent
// commands.
func (l *Local) IssueOnce(node, commandID string, build func(seq uint64) (*pb.ControlCommand, error)) (*pb.ControlCommand, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, queue, err := l.st.NodeQueue(node)
	if err != nil {
		return nil, false, err
	}
	for _, c := range queue {
		if c.GetCommandId() == commandID {
			return c, true, nil
		}
	}
	for seq := last; seq > 0 && last-seq < localLookback; seq-- {
		c, err := l.st.SentCommand(node, seq)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if c.GetCommandId() == commandID {
			return c, true, nil
		}
	}
	cmd, err := build(last + 1)
	if err != nil {
		return nil, false, err
	}
	if cmd.GetMonotonicSeq() != last+1 {
		return nil, false, fmt.Errorf("issue %s: built seq %d, want %d: %w", commandID, cmd.GetMonotonicSeq(), last+1, ErrInvalid)
	}
	if err := l.st.Enqueue(node, cmd); err != nil {
		return nil, false, err
	}
	return cmd, false, nil
}

// Dequeue implements NodeStore.
func (l *Local) Dequeue(node string, seqs ...uint64) error { return l.st.Dequeue(node, seqs...) }

// NodeQueue implements NodeStore.
func (l *Local) NodeQueue(node string) (uint64, []*pb.ControlCommand, error) {
	return l.st.NodeQueue(node)
}

// RaiseSeq implements NodeStore.
func (l *Local) RaiseSeq(node string, seq uint64) error { return l.st.RaiseSeq(node, seq) }

// ApplyOnce implements NodeStore.
func (l *Local) ApplyOnce(b store.Batch) (bool, error) {
	if b.Mark == nil {
		return false, fmt.Errorf("apply once: no mark: %w", ErrInvalid)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	marks, err := l.st.Marks()
	if err != nil {
		return false, err
	}
	for _, m := range marks {
		if m.Node == b.Mark.Node && m.Kind == b.Mark.Kind && m.Seq >= b.Mark.Seq {
			return true, nil
		}
	}
	return false, l.st.Apply(b)
}
