package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Local-degraded mode on the cloud side: the local commands nodes backfill, the per-node local watermark
// commands are stamped with, and the conflicts nodes report.
//
//	nlocal/<node>/<command_id>  pb.LocalCommand  a node's local command, once (dedup by command id)
//	nlocalwm/<node>             pb.HLC           the newest local command HLC received from the node
//	conflict/<conflict_id>      pb.Conflict      a held cloud command, open until the operator resolves it
const (
	pNodeLocal   = "nlocal/"
	pNodeLocalWM = "nlocalwm/"
	pConflict    = "conflict/"
)

// Conflict statuses.
const (
	ConflictOpen      = "open"
	ConflictApplied   = "applied"
	ConflictDiscarded = "discarded"
)

// Reconciliation is what the cloud persists for local-degraded mode.
type Reconciliation interface {
	// ApplyLocalCommands records a node's local commands not seen before (by command id), each with an audit
	// record built by audit, and raises the node's local watermark to the newest HLC among all of cmds, in
	// one transaction. It returns how many were new and the watermark after.
	ApplyLocalCommands(node string, cmds []*pb.LocalCommand, audit func(*pb.LocalCommand) *pb.AuditRecord) (fresh int, watermark *pb.HLC, err error)
	// LocalWatermark returns the node's local watermark; nil when the node never reported a local command.
	LocalWatermark(node string) (*pb.HLC, error)
	// LocalCommandsOf returns every local command the node reported, by command id.
	LocalCommandsOf(node string) ([]*pb.LocalCommand, error)
	// CreateConflict records c unless a conflict with its id exists; created reports which.
	CreateConflict(c *pb.Conflict) (created bool, err error)
	// Conflict returns one conflict; ErrNotFound when none.
	Conflict(id string) (*pb.Conflict, error)
	// Conflicts returns every conflict with the given status ("" for all), ordered by id.
	Conflicts(status string) ([]*pb.Conflict, error)
	// ResolveConflict applies fn to an open conflict and saves the result, atomically: a conflict resolved
	// already fails with ErrExists, an unknown one with ErrNotFound.
	ResolveConflict(id string, fn func(*pb.Conflict) error) (*pb.Conflict, error)
}

var _ Reconciliation = (*Badger)(nil)

// HLCAfter reports whether a is after b (wall, logical, node id); nil is before everything. It is the one
// order of local-command timestamps every store and the grains use.
func HLCAfter(a, b *pb.HLC) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	case a.GetWallMs() != b.GetWallMs():
		return a.GetWallMs() > b.GetWallMs()
	case a.GetLogical() != b.GetLogical():
		return a.GetLogical() > b.GetLogical()
	}
	return strings.Compare(a.GetNodeId(), b.GetNodeId()) > 0
}

// ApplyLocalCommands implements Reconciliation.
func (s *Badger) ApplyLocalCommands(node string, cmds []*pb.LocalCommand, audit func(*pb.LocalCommand) *pb.AuditRecord) (int, *pb.HLC, error) {
	if err := ValidNodeID(node); err != nil {
		return 0, nil, fmt.Errorf("apply local commands: %w", err)
	}
	fresh := 0
	var wm *pb.HLC
	err := s.db.Update(func(txn *badger.Txn) error {
		fresh, wm = 0, nil
		cur := &pb.HLC{}
		switch err := badgerkv.GetProto(txn, key(pNodeLocalWM, node), cur); {
		case errors.Is(err, badgerkv.ErrNotFound):
			cur = nil
		case err != nil:
			return err
		}
		wm = cur
		for _, c := range cmds {
			if err := ValidID(c.GetCommandId()); err != nil {
				return fmt.Errorf("local command id: %w", err)
			}
			if HLCAfter(c.GetHlc(), wm) {
				wm = c.GetHlc()
			}
			k := key(pNodeLocal, node, "/", c.GetCommandId())
			if _, err := txn.Get(k); err == nil {
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			if err := badgerkv.SetProto(txn, k, c); err != nil {
				return err
			}
			if rec := audit(c); rec != nil {
				rec.NodeId = node
				if err := badgerkv.SetProto(txn, s.auditKey(node, rec.GetAtUnixMs()), rec); err != nil {
					return err
				}
			}
			fresh++
		}
		if wm != nil && (cur == nil || !proto.Equal(cur, wm)) {
			return badgerkv.SetProto(txn, key(pNodeLocalWM, node), wm)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("apply %d local commands of %s: %w", len(cmds), node, err)
	}
	return fresh, wm, nil
}

// LocalWatermark implements Reconciliation.
func (s *Badger) LocalWatermark(node string) (*pb.HLC, error) {
	if err := ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("local watermark: %w", err)
	}
	h := &pb.HLC{}
	err := s.db.View(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, key(pNodeLocalWM, node), h) })
	switch {
	case errors.Is(err, badgerkv.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("local watermark of %s: %w", node, err)
	}
	return h, nil
}

// LocalCommandsOf implements Reconciliation.
func (s *Badger) LocalCommandsOf(node string) ([]*pb.LocalCommand, error) {
	if err := ValidNodeID(node); err != nil {
		return nil, fmt.Errorf("local commands: %w", err)
	}
	return scanProtos(s.db, key(pNodeLocal, node, "/"), func() *pb.LocalCommand { return &pb.LocalCommand{} })
}

// CreateConflict implements Reconciliation.
func (s *Badger) CreateConflict(c *pb.Conflict) (bool, error) {
	if err := ValidNodeID(c.GetConflictId()); err != nil {
		return false, fmt.Errorf("create conflict: %w", err)
	}
	created := false
	err := s.db.Update(func(txn *badger.Txn) error {
		k := key(pConflict, c.GetConflictId())
		if _, err := txn.Get(k); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		created = true
		return badgerkv.SetProto(txn, k, c)
	})
	if err != nil {
		return false, fmt.Errorf("create conflict %s: %w", c.GetConflictId(), err)
	}
	return created, nil
}

// Conflict implements Reconciliation.
func (s *Badger) Conflict(id string) (*pb.Conflict, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("conflict: %w", err)
	}
	c := &pb.Conflict{}
	if err := s.get(key(pConflict, id), c); err != nil {
		return nil, fmt.Errorf("conflict %s: %w", id, err)
	}
	return c, nil
}

// Conflicts implements Reconciliation.
func (s *Badger) Conflicts(status string) ([]*pb.Conflict, error) {
	all, err := scanProtos(s.db, []byte(pConflict), func() *pb.Conflict { return &pb.Conflict{} })
	if err != nil || status == "" {
		return all, err
	}
	out := all[:0]
	for _, c := range all {
		if c.GetStatus() == status {
			out = append(out, c)
		}
	}
	return out, nil
}

// ResolveConflict implements Reconciliation.
func (s *Badger) ResolveConflict(id string, fn func(*pb.Conflict) error) (*pb.Conflict, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("resolve conflict: %w", err)
	}
	var out *pb.Conflict
	err := s.db.Update(func(txn *badger.Txn) error {
		c := &pb.Conflict{}
		if err := badgerkv.GetProto(txn, key(pConflict, id), c); err != nil {
			if errors.Is(err, badgerkv.ErrNotFound) {
				return ErrNotFound
			}
			return err
		}
		if c.GetStatus() != ConflictOpen {
			out = c
			return fmt.Errorf("conflict is %s already: %w", c.GetStatus(), ErrExists)
		}
		if err := fn(c); err != nil {
			return err
		}
		out = c
		return badgerkv.SetProto(txn, key(pConflict, id), c)
	})
	if err != nil {
		return out, fmt.Errorf("resolve conflict %s: %w", id, err)
	}
	return out, nil
}
