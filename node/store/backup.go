package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// What `hashfleet node backup` takes from the store and `hashfleet node restore` puts back. The identity
// keys and enrollment are files (node/identity); the store contributes the state that makes a restored node
// safe to run: the command seq high-water mark (so an old command replayed at it is refused), the keyring
// the mark was reached with, the batch seq reservations and the confirmed ownership map. The audit log,
// command records and results are history, not state: they are in the cloud (the node's COMMAND_AUDIT
// events) and are not restored.

// RestoreBatchSeqSkip is added to each restored batch seq reservation. The node being replaced may have sent
// batches after the backup was taken, and the cloud drops every batch at or below the highest batch_seq it
// applied for the node; starting 2^32 seqs further on (136 years of one batch a second) keeps a restored
// node's telemetry from being dropped as duplicates, and seqs only need to increase.
const RestoreBatchSeqSkip = 1 << 32

// BackupState is the store's part of a node backup, read in one snapshot.
type BackupState struct {
	// SeqMark is the command high-water mark and when it last moved (0 before the first command).
	SeqMark          uint64
	SeqMarkUpdatedAt time.Time
	// OrgID and CommandKeys are the keyring snapshot (HasKeyring false when the store holds none yet).
	HasKeyring  bool
	OrgID       string
	CommandKeys []*pb.CommandKey
	// BatchSeqs are the batch seqs reserved so far, per stream kind ("telemetry", "events").
	BatchSeqs map[string]uint64
	// Ownership is the device set the cloud confirmed last (HasOwnership false when it never sent one).
	HasOwnership bool
	Ownership    []*pb.Device
}

// BackupState reads the state a backup needs in one read-only transaction, so the mark and the keyring it
// was reached with are consistent (a key command changes both in one transaction).
func (s *Badger) BackupState() (BackupState, error) {
	var st BackupState
	err := s.view(func(txn *badger.Txn) error {
		var err error
		st, err = readBackupState(txn)
		return err
	})
	if err != nil {
		return BackupState{}, fmt.Errorf("read backup state: %w", err)
	}
	return st, nil
}

func readBackupState(txn *badger.Txn) (BackupState, error) {
	st := BackupState{BatchSeqs: map[string]uint64{}}
	var m pb.SeqMark
	switch err := badgerkv.GetProto(txn, keySeqMark, &m); {
	case err == nil:
		st.SeqMark = m.GetSeq()
		if ms := m.GetUpdatedAtUnixMs(); ms > 0 {
			st.SeqMarkUpdatedAt = time.UnixMilli(ms).UTC()
		}
	case !errors.Is(err, badgerkv.ErrNotFound):
		return st, err
	}
	var kr pb.EnrollResponse
	switch err := badgerkv.GetProto(txn, keyKeyring, &kr); {
	case err == nil:
		st.HasKeyring, st.OrgID, st.CommandKeys = true, kr.GetOrgId(), kr.GetCommandKeys()
	case !errors.Is(err, badgerkv.ErrNotFound):
		return st, err
	}
	var own pb.HelloAck
	switch err := badgerkv.GetProto(txn, keyOwnership, &own); {
	case err == nil:
		st.HasOwnership, st.Ownership = true, own.GetDevices()
	case !errors.Is(err, badgerkv.ErrNotFound):
		return st, err
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixBatch), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var bs pb.SeqMark
		if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, &bs) }); err != nil {
			return st, fmt.Errorf("%s: %w", it.Item().Key(), err)
		}
		st.BatchSeqs[strings.TrimPrefix(string(it.Item().Key()), prefixBatch)] = bs.GetSeq()
	}
	return st, nil
}

// RestoreState writes a backup's state into the store in one synced transaction. Nothing moves backwards:
// the mark becomes the larger of the store's and the backup's, each batch seq reservation the larger of the
// store's and the backup's plus RestoreBatchSeqSkip. The keyring is the backup's; the ownership map is the
// backup's when it has one and the store has none.
func (s *Badger) RestoreState(st BackupState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.update(func(txn *badger.Txn) error {
		var m pb.SeqMark
		if err := badgerkv.GetProto(txn, keySeqMark, &m); err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
			return err
		}
		if st.SeqMark > m.GetSeq() {
			var at int64
			if !st.SeqMarkUpdatedAt.IsZero() {
				at = st.SeqMarkUpdatedAt.UnixMilli()
			}
			if err := badgerkv.SetProto(txn, keySeqMark, &pb.SeqMark{Seq: st.SeqMark, UpdatedAtUnixMs: at}); err != nil {
				return err
			}
		}
		if st.HasKeyring {
			if err := badgerkv.SetProto(txn, keyKeyring, keyringRecord(st.OrgID, st.CommandKeys)); err != nil {
				return err
			}
		}
		for kind, seq := range st.BatchSeqs {
			key := []byte(prefixBatch + kind)
			var cur pb.SeqMark
			if err := badgerkv.GetProto(txn, key, &cur); err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
				return err
			}
			if next := seq + RestoreBatchSeqSkip; next > cur.GetSeq() {
				if err := badgerkv.SetProto(txn, key, &pb.SeqMark{Seq: next}); err != nil {
					return err
				}
			}
		}
		if st.HasOwnership {
			var own pb.HelloAck
			err := badgerkv.GetProto(txn, keyOwnership, &own)
			if errors.Is(err, badgerkv.ErrNotFound) {
				return badgerkv.SetProto(txn, keyOwnership, &pb.HelloAck{Devices: st.Ownership})
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore state (mark %d): %w", st.SeqMark, err)
	}
	return nil
}

// Inspect runs fn with an inspector over one consistent snapshot of the live store (the running node's
// admin endpoint serves `store inspect`'s views from it while Badger's lock keeps the CLI out). Nothing is
// written. now is the time ages are computed against (nil: time.Now).
func (s *Badger) Inspect(now func() time.Time, fn func(*inspect.Inspector) error) error {
	s.views.RLock()
	defer s.views.RUnlock()
	if s.closed.Load() {
		return ErrClosed
	}
	cfg := inspect.DefaultConfig(s.dir, Schema())
	cfg.Kind = Schema().Kind
	if cfg.Dir == "" {
		cfg.Dir = "(in memory)"
	}
	if now != nil {
		cfg.Now = now
	}
	return inspect.View(s.db, cfg, fn)
}
