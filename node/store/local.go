package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// ErrLocalExists: a local command with that idempotency key (or command id, or HLC) is already in the log.
var ErrLocalExists = errors.New("local command already recorded")

// The local command log: every command issued at the site (local UI), stamped and persisted before it runs,
// then updated with its results. Keys, all under "localcmd/":
//
//	localcmd/log/<hlc wall_ms BE8><hlc logical BE4>  pb.LocalLogEntry   in causal (HLC) order
//	localcmd/id/<command_id>                         the log key        lookup by command id
//	localcmd/idem/<idempotency_key>                  command_id         the same key runs once
var (
	prefixLocalLog  = []byte("localcmd/log/")
	prefixLocalID   = "localcmd/id/"
	prefixLocalIdem = "localcmd/idem/"
)

// The local command log's prefixes, for the store inspector (schema.go).
var (
	localCommandLog = inspect.Prefix{Name: "local-command", Prefix: string(prefixLocalLog), Message: &pb.LocalLogEntry{},
		Match: func(rest []byte) bool { return len(rest) == 12 },
		FormatKey: func(rest []byte) string {
			if len(rest) != 12 {
				return inspect.Printable(rest)
			}
			return fmt.Sprintf("%d.%d", binary.BigEndian.Uint64(rest), binary.BigEndian.Uint32(rest[8:]))
		}}
	localCommandByID  = inspect.Prefix{Name: "local-command-id", Prefix: prefixLocalID, Type: "index: the log key", Decode: indexEntry}
	localCommandByKey = inspect.Prefix{Name: "local-command-idempotency", Prefix: prefixLocalIdem, Type: "index: the command id", Decode: indexEntry}
)

func indexEntry(_, _ []byte) (proto.Message, error) { return nil, nil }

func localLogKey(h *pb.HLC) []byte {
	k := make([]byte, 0, len(prefixLocalLog)+12)
	k = append(k, prefixLocalLog...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(h.GetWallMs(), 0)))
	return binary.BigEndian.AppendUint32(k, h.GetLogical())
}

// CreateLocal persists a new local command, in one synced transaction with its id and idempotency-key
// indexes. When the idempotency key is already taken it writes nothing and returns the entry recorded under
// it with an error wrapping ErrLocalExists.
func (s *Badger) CreateLocal(e *pb.LocalLogEntry) (*pb.LocalLogEntry, error) {
	c := e.GetCommand()
	if c.GetCommandId() == "" || c.GetIdempotencyKey() == "" || c.GetHlc() == nil {
		return nil, fmt.Errorf("create local command: command id, idempotency key and HLC are required")
	}
	var existing *pb.LocalLogEntry
	err := s.update(func(txn *badger.Txn) error {
		idem := []byte(prefixLocalIdem + c.GetIdempotencyKey())
		if it, err := txn.Get(idem); err == nil {
			id, err := it.ValueCopy(nil)
			if err != nil {
				return err
			}
			existing, err = localByID(txn, string(id))
			if err != nil {
				return err
			}
			return ErrLocalExists
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if _, err := txn.Get([]byte(prefixLocalID + c.GetCommandId())); err == nil {
			return fmt.Errorf("command id %s is taken: %w", c.GetCommandId(), ErrLocalExists)
		}
		key := localLogKey(c.GetHlc())
		if _, err := txn.Get(key); err == nil {
			return fmt.Errorf("HLC %d.%d is taken: %w", c.GetHlc().GetWallMs(), c.GetHlc().GetLogical(), ErrLocalExists)
		}
		if err := badgerkv.SetProto(txn, key, e); err != nil {
			return err
		}
		if err := txn.Set([]byte(prefixLocalID+c.GetCommandId()), key); err != nil {
			return err
		}
		return txn.Set(idem, []byte(c.GetCommandId()))
	})
	if err != nil {
		return existing, fmt.Errorf("create local command %s: %w", c.GetCommandId(), err)
	}
	return nil, nil
}

func localByID(txn *badger.Txn, id string) (*pb.LocalLogEntry, error) {
	it, err := txn.Get([]byte(prefixLocalID + id))
	if err != nil {
		return nil, err
	}
	key, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	e := &pb.LocalLogEntry{}
	if err := badgerkv.GetProto(txn, key, e); err != nil {
		return nil, err
	}
	return e, nil
}

// UpdateLocal replaces a local command's entry (results, done, reported). The command must exist.
func (s *Badger) UpdateLocal(e *pb.LocalLogEntry) error {
	id := e.GetCommand().GetCommandId()
	err := s.update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(prefixLocalID + id))
		if err != nil {
			return err
		}
		key, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		return badgerkv.SetProto(txn, key, e)
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update local command %s: %w", id, notFound(err))
	}
	return nil
}

// LocalCommand returns one local command by id; ErrNotFound when none.
func (s *Badger) LocalCommand(id string) (*pb.LocalLogEntry, error) {
	var e *pb.LocalLogEntry
	err := s.view(func(txn *badger.Txn) error {
		var err error
		e, err = localByID(txn, id)
		return err
	})
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("local command %s: %w", id, notFound(err))
	}
	return e, nil
}

// LocalCommands calls fn for each local command in HLC order (newest first when newestFirst) until fn
// returns false.
func (s *Badger) LocalCommands(newestFirst bool, fn func(*pb.LocalLogEntry) bool) error {
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixLocalLog, Reverse: newestFirst, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		if newestFirst {
			it.Seek(append(append([]byte{}, prefixLocalLog...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		} else {
			it.Rewind()
		}
		for ; it.Valid(); it.Next() {
			e := &pb.LocalLogEntry{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, e) }); err != nil {
				return fmt.Errorf("decode %x: %w", it.Item().Key(), err)
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read local command log: %w", err)
	}
	return nil
}

// ErrLocalNotFinished: a local command that has not finished, or whose final result is not yet reported to the
// cloud, cannot be deleted.
var ErrLocalNotFinished = errors.New("local command not finished and reported")

// DeleteLocal removes finished, reported local commands with their id and idempotency-key indexes, in one
// transaction per call: all of them or none. Unknown ids are skipped; an entry that is not done and reported
// is refused (ErrLocalNotFinished) and nothing is deleted. It returns how many entries it removed.
func (s *Badger) DeleteLocal(ids ...string) (int, error) {
	n := 0
	err := s.update(func(txn *badger.Txn) error {
		for _, id := range ids {
			it, err := txn.Get([]byte(prefixLocalID + id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			key, err := it.ValueCopy(nil)
			if err != nil {
				return err
			}
			e := &pb.LocalLogEntry{}
			if err := badgerkv.GetProto(txn, key, e); err != nil {
				return err
			}
			if !e.GetDone() || !e.GetReported() {
				return fmt.Errorf("%s: %w", id, ErrLocalNotFinished)
			}
			for _, k := range [][]byte{key, []byte(prefixLocalID + id), []byte(prefixLocalIdem + e.GetCommand().GetIdempotencyKey())} {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete local commands: %w", err)
	}
	return n, nil
}
