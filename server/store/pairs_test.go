package store

import (
	"errors"
	"testing"
	"time"
)

func TestPairsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0).UTC()
	rec := &PairRecord{ID: "p1", OrgID: "o", Site: "s", Members: [2]string{"a", "b"}, Standby: "b", Devices: []string{"m1"},
		KeyEnvelopes: map[string][]byte{"a": {1, 2}, "b": {3}}, DeclaredAt: at,
		Failovers: []PairFailover{{From: "a", To: "b", Epoch: 2, At: at, Kind: "failover"}}}
	if err := s.PutPair(rec); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPair(&PairRecord{ID: "p0", Members: [2]string{"c", "d"}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*PairRecord{nil, {ID: ""}, {ID: "p/1"}} {
		if err := s.PutPair(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("put %+v: %v, want ErrInvalidKey", bad, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps, err := s.Pairs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].ID != "p0" || ps[1].ID != "p1" || ps[1].Standby != "b" || string(ps[1].KeyEnvelopes["a"]) != "\x01\x02" ||
		len(ps[1].Failovers) != 1 || !ps[1].Failovers[0].At.Equal(at) || !ps[1].DeclaredAt.Equal(at) {
		t.Fatalf("after reopen: %+v", ps)
	}
	if err := s.DeletePair("p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePair("p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if ps, _ := s.Pairs(); len(ps) != 1 {
		t.Fatalf("after delete: %+v", ps)
	}
}
