package telemetry

import (
	"fmt"
	"sort"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Kind is the stream a batch goes on.
type Kind int

const (
	KindTelemetry Kind = iota
	KindEvents
	numKinds
)

func (k Kind) String() string {
	if k == KindEvents {
		return "events"
	}
	return "telemetry"
}

// Batch is one batch in the Outbox: exactly one of Telemetry and Events is set, and its batch_seq is Seq.
type Batch struct {
	Kind      Kind
	Seq       uint64
	Telemetry *pb.TelemetryBatch
	Events    *pb.EventBatch
	// Encoded, when set, is Telemetry's protobuf encoding, kept by an Outbox that wrote it (the spool): the
	// batcher sends it to the Uplink with the batch so it is not encoded a second time. Read-only.
	Encoded []byte
}

// Items is the number of samples or events in the batch.
func (b Batch) Items() int {
	if b.Kind == KindEvents {
		return len(b.Events.GetEvents())
	}
	return len(b.Telemetry.GetSamples())
}

// Outbox keeps batches from creation until the cloud acks them, in seq order per kind. It is the seam for the
// Badger-backed spool: the TelemetryBatcher only Appends, walks with Next, and Acks.
type Outbox interface {
	// Append adds b, whose Seq must be above every Seq of its kind appended before. When the kind is over its
	// bound the oldest batches are dropped and their seqs returned.
	Append(b Batch) (dropped []uint64, err error)
	// Next returns the oldest batch of kind with Seq > after.
	Next(kind Kind, after uint64) (Batch, bool, error)
	// Ack deletes the batch of kind with seq; false when it is not there (already acked or dropped).
	Ack(kind Kind, seq uint64) (bool, error)
	// Len returns the batches and items (samples or events) held for kind.
	Len(kind Kind) (batches, items int)
}

// MemoryOutbox is the in-memory Outbox, bounded by items per kind. Safe for concurrent use.
type MemoryOutbox struct {
	mu    sync.Mutex
	max   [numKinds]int
	items [numKinds]int
	q     [numKinds][]Batch
}

// NewMemoryOutbox returns an outbox keeping at most maxSamples samples and maxEvents events.
func NewMemoryOutbox(maxSamples, maxEvents int) *MemoryOutbox {
	return &MemoryOutbox{max: [numKinds]int{maxSamples, maxEvents}}
}

// Append implements Outbox.
func (o *MemoryOutbox) Append(b Batch) ([]uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.q[b.Kind]
	if n := len(q); n > 0 && q[n-1].Seq >= b.Seq {
		return nil, fmt.Errorf("append %s batch %d after %d: %w", b.Kind, b.Seq, q[n-1].Seq, ErrSeqOrder)
	}
	q = append(q, b)
	o.items[b.Kind] += b.Items()
	var dropped []uint64
	for o.items[b.Kind] > o.max[b.Kind] && len(q) > 1 {
		dropped = append(dropped, q[0].Seq)
		o.items[b.Kind] -= q[0].Items()
		q[0] = Batch{}
		q = q[1:]
	}
	o.q[b.Kind] = q
	return dropped, nil
}

// Next implements Outbox.
func (o *MemoryOutbox) Next(kind Kind, after uint64) (Batch, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.q[kind]
	i := sort.Search(len(q), func(i int) bool { return q[i].Seq > after })
	if i == len(q) {
		return Batch{}, false, nil
	}
	return q[i], true, nil
}

// Ack implements Outbox.
func (o *MemoryOutbox) Ack(kind Kind, seq uint64) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.q[kind]
	i := sort.Search(len(q), func(i int) bool { return q[i].Seq >= seq })
	if i == len(q) || q[i].Seq != seq {
		return false, nil
	}
	o.items[kind] -= q[i].Items()
	if i == 0 {
		q[0] = Batch{}
		o.q[kind] = q[1:]
	} else {
		o.q[kind] = append(q[:i], q[i+1:]...)
	}
	return true, nil
}

// Len implements Outbox.
func (o *MemoryOutbox) Len(kind Kind) (int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q[kind]), o.items[kind]
}

var _ Outbox = (*MemoryOutbox)(nil)
