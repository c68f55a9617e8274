package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// keySitePolicy holds the installed signed site policy (node/automation), exactly as it was signed.
var keySitePolicy = []byte("policy/site")

// SitePolicy returns the stored signed site policy; nil and no error when none was ever installed.
func (s *Badger) SitePolicy() (*pb.SitePolicy, error) {
	var p pb.SitePolicy
	err := s.view(func(txn *badger.Txn) error { return badgerkv.GetProto(txn, keySitePolicy, &p) })
	switch {
	case errors.Is(err, badgerkv.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("site policy: %w", err)
	}
	return &p, nil
}

// SetSitePolicy replaces the stored signed site policy durably.
func (s *Badger) SetSitePolicy(p *pb.SitePolicy) error {
	if err := s.update(func(txn *badger.Txn) error { return badgerkv.SetProto(txn, keySitePolicy, p) }); err != nil {
		return fmt.Errorf("save site policy: %w", err)
	}
	return nil
}

// keyCurtailState holds the CurtailActor's state (node/curtail.State as JSON), so a restarted node resumes
// the event in progress: the miners it curtailed are released by it, not forgotten asleep.
var keyCurtailState = []byte("curtail/state")

// CurtailState returns the stored curtailment state; nil and no error when none was stored.
func (s *Badger) CurtailState() ([]byte, error) {
	var out []byte
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(keyCurtailState)
		if err != nil {
			return err
		}
		out, err = it.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("curtailment state: %w", err)
	}
	return out, nil
}

// SetCurtailState replaces the stored curtailment state.
func (s *Badger) SetCurtailState(b []byte) error {
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(keyCurtailState, b) }); err != nil {
		return fmt.Errorf("save curtailment state: %w", err)
	}
	return nil
}
