package credentials

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Store persists the vault: one DeviceRecord per device, an index of devices by node (DeviceRecord.Nodes),
// an index of devices needing work (DeviceRecord.Pending), and the set of revoked nodes. It stores what it
// is given: only ciphertext ever reaches it.
//
// Update must be serializable with respect to the keys fn reads and writes, including a Revoked lookup of a
// node that is not revoked: a transaction that read "not revoked" must not commit after a MarkRevoked of
// the same node that committed in between (Badger's conflict detection gives this; the retry reruns fn).
type Store interface {
	// Update runs fn in one atomic read-write transaction. fn may run more than once (retry on conflict),
	// so it must have no effects outside tx.
	Update(fn func(tx Tx) error) error
	// View runs fn in a read-only snapshot.
	View(fn func(tx Tx) error) error
}

// Tx is one transaction's view of the store.
type Tx interface {
	// Device returns the device's record, or nil if there is none.
	Device(deviceID string) (*DeviceRecord, error)
	// PutDevice stores rec and updates both indexes from it (read-only transactions refuse).
	PutDevice(rec *DeviceRecord) error
	// DeleteDevice removes the record and its index entries; absent is not an error.
	DeleteDevice(deviceID string) error
	// DevicesOf lists the devices whose record names the node (DeviceRecord.Nodes), sorted.
	DevicesOf(nodeID string) ([]string, error)
	// PendingDevices lists the devices whose record is Pending, sorted.
	PendingDevices() ([]string, error)
	// Revoked reports whether the node was revoked.
	Revoked(nodeID string) (bool, error)
	// MarkRevoked records the node as revoked at at (idempotent: the first time is kept).
	MarkRevoked(nodeID string, at time.Time) error
	// RevokedNodes lists every revoked node, sorted.
	RevokedNodes() ([]string, error)
}

// MemStore is the in-memory twin of the Badger store, for tests and single-process demos. One mutex makes
// every transaction serializable; records are deep-copied in and out, as an encoding store would.
type MemStore struct {
	mu      sync.Mutex
	devices map[string]*DeviceRecord
	revoked map[string]time.Time
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{devices: make(map[string]*DeviceRecord), revoked: make(map[string]time.Time)}
}

// Update implements Store. fn's writes apply only if it returns nil.
func (m *MemStore) Update(fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{m: m, devices: maps.Clone(m.devices), revoked: maps.Clone(m.revoked), writable: true}
	if err := fn(tx); err != nil {
		return err
	}
	m.devices, m.revoked = tx.devices, tx.revoked
	return nil
}

// View implements Store.
func (m *MemStore) View(fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{m: m, devices: m.devices, revoked: m.revoked})
}

type memTx struct {
	m        *MemStore
	devices  map[string]*DeviceRecord
	revoked  map[string]time.Time
	writable bool
}

func (t *memTx) Device(id string) (*DeviceRecord, error) { return t.devices[id].Clone(), nil }

func (t *memTx) PutDevice(rec *DeviceRecord) error {
	if !t.writable {
		return errReadOnly
	}
	t.devices[rec.DeviceID] = rec.Clone()
	return nil
}

func (t *memTx) DeleteDevice(id string) error {
	if !t.writable {
		return errReadOnly
	}
	delete(t.devices, id)
	return nil
}

func (t *memTx) DevicesOf(node string) ([]string, error) {
	var out []string
	for id, rec := range t.devices {
		if slices.Contains(rec.Nodes(), node) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (t *memTx) PendingDevices() ([]string, error) {
	var out []string
	for id, rec := range t.devices {
		if rec.Pending() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (t *memTx) Revoked(node string) (bool, error) {
	_, ok := t.revoked[node]
	return ok, nil
}

func (t *memTx) MarkRevoked(node string, at time.Time) error {
	if !t.writable {
		return errReadOnly
	}
	if _, ok := t.revoked[node]; !ok {
		t.revoked[node] = at
	}
	return nil
}

func (t *memTx) RevokedNodes() ([]string, error) {
	return slices.Sorted(maps.Keys(t.revoked)), nil
}
