package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Records of commissioning: discovery scans and pairings, one record each, keyed by their id. Ids are made
// by the server and sort by time ("scan-<ms hex>…", "pair-<ms hex>…"), so a prefix scan lists them in order.

const (
	pScan    = "scan/"
	pPairing = "pairing/"
)

// Commissioning persists discovery scans and pairings.
type Commissioning interface {
	// PutScan writes a scan record whole.
	PutScan(rec *pb.ScanRecord) error
	// Scan reads one; ErrNotFound when absent.
	Scan(id string) (*pb.ScanRecord, error)
	// Scans returns the newest limit scans, oldest first (without their devices and errors).
	Scans(limit int) ([]*pb.ScanRecord, error)
	// PutPairing writes a pairing record whole.
	PutPairing(rec *pb.PairingRecord) error
	// Pairing reads one; ErrNotFound when absent.
	Pairing(id string) (*pb.PairingRecord, error)
	// Pairings returns the newest limit pairings, oldest first.
	Pairings(limit int) ([]*pb.PairingRecord, error)
}

var _ Commissioning = (*Badger)(nil)

func (s *Badger) put(k []byte, m proto.Message) error {
	return s.db.Update(func(txn *badger.Txn) error { return badgerkv.SetProto(txn, k, m) })
}

func (s *Badger) get(k []byte, m proto.Message) error {
	err := s.db.View(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, k, m) })
	if errors.Is(err, badgerkv.ErrNotFound) {
		return fmt.Errorf("%s: %w", k, ErrNotFound)
	}
	return err
}

// newest returns the last limit records under prefix, oldest first.
func newest[T proto.Message](db *badger.DB, prefix []byte, limit int, mk func() T) ([]T, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []T
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: 32})
		defer it.Close()
		seek := append(append([]byte(nil), prefix...), 0xff)
		for it.Seek(seek); it.Valid() && len(out) < limit; it.Next() {
			m := mk()
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
				return fmt.Errorf("decode %q: %w", it.Item().Key(), err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", prefix, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// PutScan implements Commissioning.
func (s *Badger) PutScan(rec *pb.ScanRecord) error {
	if err := ValidNodeID(rec.GetScanId()); err != nil {
		return fmt.Errorf("put scan: %w", err)
	}
	if err := s.put(key(pScan, rec.GetScanId()), rec); err != nil {
		return fmt.Errorf("put scan %s: %w", rec.GetScanId(), err)
	}
	return nil
}

// Scan implements Commissioning.
func (s *Badger) Scan(id string) (*pb.ScanRecord, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	rec := &pb.ScanRecord{}
	if err := s.get(key(pScan, id), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// Scans implements Commissioning.
func (s *Badger) Scans(limit int) ([]*pb.ScanRecord, error) {
	recs, err := newest(s.db, []byte(pScan), limit, func() *pb.ScanRecord { return &pb.ScanRecord{} })
	for _, r := range recs {
		r.Found, r.Errors = nil, nil
	}
	return recs, err
}

// PutPairing implements Commissioning.
func (s *Badger) PutPairing(rec *pb.PairingRecord) error {
	if err := ValidNodeID(rec.GetPairingId()); err != nil {
		return fmt.Errorf("put pairing: %w", err)
	}
	if err := s.put(key(pPairing, rec.GetPairingId()), rec); err != nil {
		return fmt.Errorf("put pairing %s: %w", rec.GetPairingId(), err)
	}
	return nil
}

// Pairing implements Commissioning.
func (s *Badger) Pairing(id string) (*pb.PairingRecord, error) {
	if err := ValidNodeID(id); err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	rec := &pb.PairingRecord{}
	if err := s.get(key(pPairing, id), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// Pairings implements Commissioning.
func (s *Badger) Pairings(limit int) ([]*pb.PairingRecord, error) {
	return newest(s.db, []byte(pPairing), limit, func() *pb.PairingRecord { return &pb.PairingRecord{} })
}

// DB is the underlying Badger database, shared with the credential vault (server/credentials keeps its
// records under "cred/").
func (s *Badger) DB() *badger.DB { return s.db }
