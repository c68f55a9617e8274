package node

import (
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/node/spool"
	"github.com/hashfleet/hashfleet/node/store"
)

// The node's durable state as its operator tools read it while it runs (status.json, the loopback admin
// endpoint, `hashfleet node backup`): Badger lets one process open a directory, so these go through the
// running node rather than the files.

// Store kinds InspectStore serves (the inspector's schema kinds).
const (
	StoreNode  = "node"
	StoreSpool = "spool"
)

// SpoolStatus is the spool's state and the progress of its current backlog.
type SpoolStatus struct {
	// Dir is the spool's directory.
	Dir      string
	Stats    spool.Stats
	Progress spool.Progress
}

// Spool returns the spool's state; ok is false when the node keeps its outbox in memory (no DataDir or no
// cloud link) or is not started.
func (n *Node) Spool() (st SpoolStatus, ok bool) {
	n.mu.Lock()
	sp, dir := n.spool, n.cfg.spoolConfig().Dir
	n.mu.Unlock()
	if sp == nil {
		return SpoolStatus{}, false
	}
	return SpoolStatus{Dir: dir, Stats: sp.Stats(), Progress: sp.Progress()}, true
}

// StoreDirs maps each store kind the node has open to its directory ("" for an in-memory store).
func (n *Node) StoreDirs() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	if n.store != nil {
		out[StoreNode] = n.cfg.DataDir
	}
	if n.spool != nil {
		out[StoreSpool] = n.cfg.spoolConfig().Dir
	}
	return out
}

// InspectStore runs fn with a read-only inspector over one consistent snapshot (a Badger read transaction)
// of the node's live store (StoreNode) or spool (StoreSpool). now is the time ages are computed against
// (nil: the node's clock).
func (n *Node) InspectStore(kind string, now func() time.Time, fn func(*inspect.Inspector) error) error {
	n.mu.Lock()
	st, sp, started, clk := n.store, n.spool, n.started, n.cfg.Clock
	n.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	if now == nil {
		now = clk.Now
	}
	switch {
	case kind == StoreNode && st != nil:
		return st.Inspect(now, fn)
	case kind == StoreSpool && sp != nil:
		return sp.Inspect(now, fn)
	}
	return fmt.Errorf("store %q: %w", kind, ErrNoSuchStore)
}

// BackupState reads the store's part of a backup (seq mark, keyring, batch seqs, ownership) in one
// snapshot.
func (n *Node) BackupState() (store.BackupState, error) {
	n.mu.Lock()
	st, started := n.store, n.started
	n.mu.Unlock()
	if !started || st == nil {
		return store.BackupState{}, ErrNotStarted
	}
	return st.BackupState()
}
