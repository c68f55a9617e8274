package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of the Badger store (every id path-escaped, so '/' in an id cannot forge a key). Values are
// JSON: a DeviceRecord holds envelopes (ciphertext), node keys and workflow state, never plaintext.
//
//	cred/dev/<device>          DeviceRecord (JSON)
//	cred/idx/<node>/<device>   (empty)      device names the node (DeviceRecord.Nodes)
//	cred/pend/<device>         (empty)      device needs work (DeviceRecord.Pending)
//	cred/rev/<node>            revokedNode (JSON)
//
// The "cred/" prefix lets the vault share a Badger with server/store, whose prefixes do not overlap.
const (
	pDevice  = "cred/dev/"
	pIndex   = "cred/idx/"
	pPending = "cred/pend/"
	pRevoked = "cred/rev/"
)

// maxConflictRetries bounds how often Update reruns a transaction that lost a conflict.
const maxConflictRetries = 16

// BadgerStore is the Store on Badger (actors/badgerkv). The caller opens the DB, with SyncWrites so that a
// workflow step survives a crash, and closes it.
type BadgerStore struct{ db *badger.DB }

var _ Store = (*BadgerStore)(nil)

// NewBadgerStore returns a Store over db.
func NewBadgerStore(db *badger.DB) *BadgerStore { return &BadgerStore{db: db} }

// Update implements Store, rerunning fn when Badger reports a conflict.
func (s *BadgerStore) Update(fn func(Tx) error) error {
	var err error
	for range maxConflictRetries {
		err = s.db.Update(func(txn *badger.Txn) error { return fn(&badgerTx{txn: txn}) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("credential store: gave up after %d conflicting attempts: %w", maxConflictRetries, err)
}

// View implements Store.
func (s *BadgerStore) View(fn func(Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(&badgerTx{txn: txn}) })
}

type badgerTx struct{ txn *badger.Txn }

type revokedNode struct {
	NodeID    string    `json:"node_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

func esc(s string) string { return url.PathEscape(s) }

func deviceKey(dev string) []byte      { return []byte(pDevice + esc(dev)) }
func indexKey(node, dev string) []byte { return []byte(pIndex + esc(node) + "/" + esc(dev)) }
func indexPrefix(node string) []byte   { return []byte(pIndex + esc(node) + "/") }
func pendingKey(dev string) []byte     { return []byte(pPending + esc(dev)) }
func revokedKey(node string) []byte    { return []byte(pRevoked + esc(node)) }
func unesc(s string) (string, error)   { return url.PathUnescape(s) }

func (t *badgerTx) Device(dev string) (*DeviceRecord, error) {
	item, err := t.txn.Get(deviceKey(dev))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credential store: get device %q: %w", dev, err)
	}
	var rec DeviceRecord
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
		return nil, fmt.Errorf("credential store: device %q: %v: %w", dev, err, ErrCorruptRecord)
	}
	if rec.DeviceID != dev {
		return nil, fmt.Errorf("credential store: key of device %q holds device %q: %w", dev, rec.DeviceID, ErrCorruptRecord)
	}
	return &rec, nil
}

func (t *badgerTx) PutDevice(rec *DeviceRecord) error {
	old, err := t.Device(rec.DeviceID)
	if err != nil && !errors.Is(err, ErrCorruptRecord) {
		return err
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("credential store: encode device %q: %w", rec.DeviceID, err)
	}
	if err := t.txn.Set(deviceKey(rec.DeviceID), v); err != nil {
		return fmt.Errorf("credential store: put device %q: %w", rec.DeviceID, err)
	}
	return t.reindex(rec.DeviceID, old, rec)
}

func (t *badgerTx) DeleteDevice(dev string) error {
	old, err := t.Device(dev)
	if err != nil && !errors.Is(err, ErrCorruptRecord) {
		return err
	}
	if err := t.txn.Delete(deviceKey(dev)); err != nil {
		return fmt.Errorf("credential store: delete device %q: %w", dev, err)
	}
	return t.reindex(dev, old, nil)
}

// reindex moves the device's index entries from what old named to what rec names.
func (t *badgerTx) reindex(dev string, old, rec *DeviceRecord) error {
	var before, after []string
	if old != nil {
		before = old.Nodes()
	}
	if rec != nil {
		after = rec.Nodes()
	}
	keep := make(map[string]bool, len(after))
	for _, n := range after {
		keep[n] = true
		if err := t.txn.Set(indexKey(n, dev), nil); err != nil {
			return fmt.Errorf("credential store: index %q/%q: %w", n, dev, err)
		}
	}
	for _, n := range before {
		if !keep[n] {
			if err := t.txn.Delete(indexKey(n, dev)); err != nil {
				return fmt.Errorf("credential store: unindex %q/%q: %w", n, dev, err)
			}
		}
	}
	if rec != nil && rec.Pending() {
		return t.txn.Set(pendingKey(dev), nil)
	}
	return t.txn.Delete(pendingKey(dev))
}

// keys lists the unescaped remainders of the keys under prefix.
func (t *badgerTx) keys(prefix []byte) ([]string, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []string
	for it.Rewind(); it.Valid(); it.Next() {
		s, err := unesc(strings.TrimPrefix(string(it.Item().Key()), string(prefix)))
		if err != nil {
			return nil, fmt.Errorf("credential store: key %q: %v: %w", it.Item().Key(), err, ErrCorruptRecord)
		}
		out = append(out, s)
	}
	slices.Sort(out) // escaping changes the order ('%' sorts before '-')
	return out, nil
}

func (t *badgerTx) DevicesOf(node string) ([]string, error) { return t.keys(indexPrefix(node)) }

func (t *badgerTx) PendingDevices() ([]string, error) { return t.keys([]byte(pPending)) }

func (t *badgerTx) Revoked(node string) (bool, error) {
	_, err := t.txn.Get(revokedKey(node))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("credential store: revoked %q: %w", node, err)
	}
	return true, nil
}

func (t *badgerTx) MarkRevoked(node string, at time.Time) error {
	if ok, err := t.Revoked(node); err != nil || ok {
		return err
	}
	v, err := json.Marshal(revokedNode{NodeID: node, RevokedAt: at})
	if err != nil {
		return err
	}
	if err := t.txn.Set(revokedKey(node), v); err != nil {
		return fmt.Errorf("credential store: mark %q revoked: %w", node, err)
	}
	return nil
}

func (t *badgerTx) RevokedNodes() ([]string, error) { return t.keys([]byte(pRevoked)) }
