package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// The node's trust store of its org's command-issuance keys (node/gate.KeyringVerifier) is persisted here, so
// announcements and revocations survive a restart. A key command's seq mark, audit record and the keyring it
// produced are written in one transaction: a crash never leaves a consumed seq without its key change, or a
// key change whose seq could be replayed.

var keyKeyring = []byte("keyring")

// keyringRecord reuses EnrollResponse as the container of (org_id, command_keys).
func keyringRecord(orgID string, keys []*pb.CommandKey) *pb.EnrollResponse {
	return &pb.EnrollResponse{OrgId: orgID, CommandKeys: keys}
}

// SaveKeyring stores the keyring snapshot of orgID (what enrollment delivered, or a restored backup).
func (s *Badger) SaveKeyring(orgID string, keys []*pb.CommandKey) error {
	if err := s.update(func(txn *badger.Txn) error {
		return badgerkv.SetProto(txn, keyKeyring, keyringRecord(orgID, keys))
	}); err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	return nil
}

// Keyring returns the persisted keyring snapshot; ErrNotFound when the node has none yet.
func (s *Badger) Keyring() (orgID string, keys []*pb.CommandKey, err error) {
	var r pb.EnrollResponse
	if err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, keyKeyring, &r) }); err != nil {
		return "", nil, fmt.Errorf("keyring: %w", notFound(err))
	}
	return r.GetOrgId(), r.GetCommandKeys(), nil
}

// CommitKeyCommand is CommitCommand for a key announcement or revocation: the mark, the command record, the
// audit record and the new keyring snapshot in one synced transaction.
func (s *Badger) CommitKeyCommand(rec *pb.AuditRecord, orgID string, keys []*pb.CommandKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := rec.GetMonotonicSeq()
	err := s.update(func(txn *badger.Txn) error {
		var m pb.SeqMark
		if err := badgerkv.GetProto(txn, keySeqMark, &m); err != nil && !errors.Is(err, badgerkv.ErrNotFound) {
			return err
		}
		if seq <= m.GetSeq() {
			return fmt.Errorf("seq %d, mark %d: %w", seq, m.GetSeq(), ErrSeqNotAbove)
		}
		if err := badgerkv.SetProto(txn, keySeqMark, &pb.SeqMark{Seq: seq, UpdatedAtUnixMs: rec.GetAtUnixMs()}); err != nil {
			return err
		}
		if err := badgerkv.SetProto(txn, seqKey(prefixCommand, seq), rec); err != nil {
			return err
		}
		if err := badgerkv.SetProto(txn, keyKeyring, keyringRecord(orgID, keys)); err != nil {
			return err
		}
		return badgerkv.SetProto(txn, s.auditKey(rec), rec)
	})
	if err != nil {
		return fmt.Errorf("commit key command seq %d: %w", seq, err)
	}
	return nil
}
