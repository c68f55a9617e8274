package faults

import (
	"sync"
	"sync/atomic"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
)

// Disk is one node's disk as the wrappers below see it: full or not. Every write a wrapper makes asks it
// first; a full disk fails the write with ErrDiskFull and leaves the wrapped store untouched, as a
// failed fsync'd commit does. Reads always work. Safe for concurrent use.
type Disk struct {
	mu       sync.Mutex
	full     bool
	left     int // writes still allowed before filling; < 0: no countdown
	failures atomic.Int64
	writes   atomic.Int64
}

// NewDisk returns a disk with room.
func NewDisk() *Disk { return &Disk{left: -1} }

// Fill makes every write fail from now on.
func (d *Disk) Fill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.left = true, -1
}

// FillAfter lets n more writes succeed, then fills the disk (a spool that fills up mid-outage).
func (d *Disk) FillAfter(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.left = n <= 0, n
	if n <= 0 {
		d.left = -1
	}
}

// Free makes room again.
func (d *Disk) Free() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.left = false, -1
}

// Full reports whether writes fail now.
func (d *Disk) Full() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.full
}

// Failures is how many writes failed; Writes how many were let through.
func (d *Disk) Failures() int64 { return d.failures.Load() }

// Writes is how many writes were let through.
func (d *Disk) Writes() int64 { return d.writes.Load() }

// Write is the check a wrapper makes before each write: nil, or ErrDiskFull.
func (d *Disk) Write() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full {
		d.failures.Add(1)
		return ErrDiskFull
	}
	if d.left > 0 {
		d.left--
		if d.left == 0 {
			d.full, d.left = true, -1
		}
	}
	d.writes.Add(1)
	return nil
}

// DiskFullOutbox is a telemetry.Outbox (the node's spool seam: node/spool.Spool implements it) on a Disk:
// Append and Ack (a delete writes too) fail with ErrDiskFull while it is full, Next and Len pass through.
type DiskFullOutbox struct {
	telemetry.Outbox
	Disk *Disk
}

// Append implements telemetry.Outbox.
func (o DiskFullOutbox) Append(b telemetry.Batch) ([]uint64, error) {
	if err := o.Disk.Write(); err != nil {
		return nil, err
	}
	return o.Outbox.Append(b)
}

// Ack implements telemetry.Outbox.
func (o DiskFullOutbox) Ack(kind telemetry.Kind, seq uint64) (bool, error) {
	if err := o.Disk.Write(); err != nil {
		return false, err
	}
	return o.Outbox.Ack(kind, seq)
}

// NodeStore is everything the node persists through its store (node/store.Badger): store.Store, the
// CommandGate's key-command commit (node/gate.Store) and the keyring snapshot (node/gate.KeyStore).
type NodeStore interface {
	store.Store
	CommitKeyCommand(rec *pb.AuditRecord, orgID string, keys []*pb.CommandKey) error
	SaveKeyring(orgID string, keys []*pb.CommandKey) error
	Keyring() (orgID string, keys []*pb.CommandKey, err error)
}

var _ NodeStore = (*store.Badger)(nil)

// DiskFullStore is a NodeStore on a Disk: every write fails with ErrDiskFull while it is full (the seq
// mark cannot move, so the gate must refuse rather than dispatch), reads pass through.
type DiskFullStore struct {
	NodeStore
	Disk *Disk
}

// CommitCommand implements store.Store.
func (s DiskFullStore) CommitCommand(rec *pb.AuditRecord) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.CommitCommand(rec)
}

// AppendAudit implements store.Store.
func (s DiskFullStore) AppendAudit(rec *pb.AuditRecord) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.AppendAudit(rec)
}

// PutResult implements store.Store.
func (s DiskFullStore) PutResult(r *pb.CommandResultReport) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.PutResult(r)
}

// SetOwnership implements store.Store.
func (s DiskFullStore) SetOwnership(devices []*pb.Device) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.SetOwnership(devices)
}

// ReserveBatchSeqs implements store.Store.
func (s DiskFullStore) ReserveBatchSeqs(kind string, n uint64) (uint64, error) {
	if err := s.Disk.Write(); err != nil {
		return 0, err
	}
	return s.NodeStore.ReserveBatchSeqs(kind, n)
}

// CommitKeyCommand implements node/gate.Store.
func (s DiskFullStore) CommitKeyCommand(rec *pb.AuditRecord, orgID string, keys []*pb.CommandKey) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.CommitKeyCommand(rec, orgID, keys)
}

// SaveKeyring implements node/gate.KeyStore.
func (s DiskFullStore) SaveKeyring(orgID string, keys []*pb.CommandKey) error {
	if err := s.Disk.Write(); err != nil {
		return err
	}
	return s.NodeStore.SaveKeyring(orgID, keys)
}

var (
	_ telemetry.Outbox = DiskFullOutbox{}
	_ NodeStore        = DiskFullStore{}
)
