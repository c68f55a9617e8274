package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

func pairRec(id, a, b string, devices ...string) *store.PairRecord {
	return &store.PairRecord{ID: id, OrgID: "o", Site: "s", Members: [2]string{a, b}, Standby: b, Devices: devices}
}

func pairIDs(t *testing.T, p store.PairStore) []string {
	t.Helper()
	recs, err := p.Pairs()
	must(t, err)
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// testPairClaims: a node and a device belong to at most one pair; rewriting a pair (history, a transfer
// request, a changed device list) keeps or moves its own claims; deleting it frees them.
func testPairClaims(t *testing.T, st Stores, _ Suite) {
	if st.Pairs == nil {
		t.Skip("no pair store")
	}
	p := st.Pairs
	must(t, p.PutPair(pairRec("p1", "n1", "n2", "m1", "m2")))
	for name, rec := range map[string]*store.PairRecord{
		"device of p1":        pairRec("p2", "n3", "n4", "m9", "m2"),
		"member of p1":        pairRec("p2", "n3", "n1", "m9"),
		"other member of p1":  pairRec("p2", "n2", "n4"),
		"both members of p1":  pairRec("p2", "n2", "n1"),
		"same members, other": pairRec("p0", "n1", "n2", "m7"),
	} {
		if err := p.PutPair(rec); !errors.Is(err, store.ErrExists) {
			t.Errorf("%s: %v, want ErrExists", name, err)
		}
	}
	if ids := pairIDs(t, p); len(ids) != 1 || ids[0] != "p1" {
		t.Fatalf("refused declarations were stored: %v", ids)
	}
	// The same pair written again (the Org grain does this on every holder change) is not a clash with itself.
	again := pairRec("p1", "n1", "n2", "m1", "m2")
	again.Failovers = []store.PairFailover{{From: "n1", To: "n2", Epoch: 2, Kind: "failover"}}
	must(t, p.PutPair(again))
	// p1 drops m2: another pair may take it; p1 cannot take it back.
	must(t, p.PutPair(pairRec("p1", "n1", "n2", "m1")))
	must(t, p.PutPair(pairRec("p2", "n3", "n4", "m2")))
	if err := p.PutPair(pairRec("p1", "n1", "n2", "m1", "m2")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taking back a device another pair has now: %v, want ErrExists", err)
	}
	recs, err := p.Pairs()
	must(t, err)
	if len(recs) != 2 || len(recs[0].Devices) != 1 || recs[0].Devices[0] != "m1" || len(recs[0].Failovers) != 0 {
		t.Fatalf("a refused rewrite changed p1: %+v", recs[0])
	}
	// Deleting frees members and devices.
	must(t, p.DeletePair("p1"))
	must(t, p.PutPair(pairRec("p3", "n1", "n5", "m1")))
	must(t, p.PutPair(pairRec("p4", "n2", "n6")))
	if ids := pairIDs(t, p); strings.Join(ids, ",") != "p2,p3,p4" {
		t.Fatalf("pairs %v", ids)
	}
}

// testPairHostile: malformed records and ids are refused with ErrInvalidKey and store nothing; odd but
// valid ids are just ids.
func testPairHostile(t *testing.T, st Stores, _ Suite) {
	if st.Pairs == nil {
		t.Skip("no pair store")
	}
	p := st.Pairs
	long := strings.Repeat("x", store.MaxIDLen+1)
	for name, rec := range map[string]*store.PairRecord{
		"nil":                 nil,
		"empty id":            pairRec("", "n1", "n2"),
		"id with slash":       pairRec("p/1", "n1", "n2"),
		"id with space":       pairRec("p 1", "n1", "n2"),
		"id too long":         pairRec(long, "n1", "n2"),
		"id with NUL":         pairRec("p\x00", "n1", "n2"),
		"empty member":        pairRec("p1", "", "n2"),
		"member with slash":   pairRec("p1", "n1", "../n2"),
		"member with tab":     pairRec("p1", "n1\t", "n2"),
		"one node twice":      pairRec("p1", "n1", "n1"),
		"empty device":        pairRec("p1", "n1", "n2", ""),
		"device too long":     pairRec("p1", "n1", "n2", long),
		"device with ctl":     pairRec("p1", "n1", "n2", "m\x01"),
		"device listed twice": pairRec("p1", "n1", "n2", "m1", "m2", "m1"),
	} {
		if err := p.PutPair(rec); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
	for _, id := range []string{"", "a/b", "a b", long, "nl\n"} {
		if err := p.DeletePair(id); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("delete %q: %v, want ErrInvalidKey", id, err)
		}
	}
	if ids := pairIDs(t, p); len(ids) != 0 {
		t.Fatalf("refused records were stored: %v", ids)
	}
	odd := pairRec(`p'1";DROP_TABLE_pairs;--`, "ünï", `n%_*`, `m/with/slash`, `m'q`, "ü")
	must(t, p.PutPair(odd))
	recs, err := p.Pairs()
	must(t, err)
	if len(recs) != 1 || recs[0].ID != odd.ID || recs[0].Members != odd.Members || strings.Join(recs[0].Devices, "|") != strings.Join(odd.Devices, "|") {
		t.Fatalf("odd ids: %+v", recs)
	}
	if err := p.PutPair(pairRec("p2", "n8", "n9", "m'q")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("odd device claimed twice: %v", err)
	}
	must(t, p.DeletePair(odd.ID))
}

// testPairConcurrentClaim: many declarations naming one device race (as two Org activations, or two
// operators on two members, would): exactly one is stored, every other gets ErrExists, and the claims
// still hold afterwards.
func testPairConcurrentClaim(t *testing.T, st Stores, _ Suite) {
	if st.Pairs == nil {
		t.Skip("no pair store")
	}
	p := st.Pairs
	const racers, rounds = 8, 5
	for r := range rounds {
		dev := fmt.Sprintf("shared-%d", r)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var wins []string
		var errs []error
		for w := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("r%d-w%d", r, w)
				// Each racer has its own members; they share the device (and, for half, a second one).
				devs := []string{fmt.Sprintf("own-%d-%d", r, w), dev}
				if w%2 == 0 {
					devs = append(devs, fmt.Sprintf("shared2-%d", r))
				}
				err := p.PutPair(pairRec(id, id+"-a", id+"-b", devs...))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins = append(wins, id)
				case !errors.Is(err, store.ErrExists):
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: losers must see ErrExists: %v", r, errs)
		}
		if len(wins) != 1 {
			t.Fatalf("round %d: %d declarations of one device stored (%v); exactly one may", r, len(wins), wins)
		}
	}
	recs, err := p.Pairs()
	must(t, err)
	if len(recs) != rounds {
		t.Fatalf("%d pairs stored after %d rounds", len(recs), rounds)
	}
	owner := map[string]string{}
	for _, rec := range recs {
		for _, d := range rec.Devices {
			if prev, dup := owner[d]; dup {
				t.Fatalf("device %s in pairs %s and %s", d, prev, rec.ID)
			}
			owner[d] = rec.ID
		}
	}
}

func testSites(t *testing.T, st Stores, _ Suite) {
	s := st.Sites
	if s == nil {
		t.Skip("no site store")
	}
	if _, err := s.SitePolicy("north"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing policy: %v, want ErrNotFound", err)
	}
	p1 := &pb.SitePolicy{Body: []byte(`{"version":1}`), KeyId: "k1", Signature: []byte{1, 2, 3}}
	p2 := &pb.SitePolicy{Body: []byte(`{"version":2}`), KeyId: "k2", Signature: []byte{4}}
	must(t, s.PutSitePolicy("north", p1))
	must(t, s.PutSitePolicy("south yard ü", p1))
	must(t, s.PutSitePolicy("north", p2)) // replaces
	for site, want := range map[string]*pb.SitePolicy{"north": p2, "south yard ü": p1} {
		got, err := s.SitePolicy(site)
		must(t, err)
		if !proto.Equal(got, want) {
			t.Fatalf("policy of %s: %v, want %v", site, got, want)
		}
	}
	for _, site := range []string{"", "a/b", "nul\x00", strings.Repeat("s", 129)} {
		if err := s.PutSitePolicy(site, p1); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("put policy of %q: %v, want ErrInvalidKey", site, err)
		}
		if _, err := s.SitePolicy(site); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("policy of %q: %v, want ErrInvalidKey", site, err)
		}
	}
	if err := s.PutSitePolicy(strings.Repeat("s", 128), p1); err != nil {
		t.Fatalf("a 128-byte site name: %v", err)
	}

	all, err := s.CurtailStatuses()
	must(t, err)
	if len(all) != 0 {
		t.Fatalf("fresh curtail statuses: %v", all)
	}
	c1 := &pb.CurtailStatus{EventId: "e1", State: "holding", TargetKw: 1000, Curtailed: []string{"m1", "m2"}, Source: "cloud"}
	c2 := &pb.CurtailStatus{EventId: "e2", State: "done", Full: true}
	must(t, s.PutCurtailStatus("n1", c1))
	must(t, s.PutCurtailStatus("n2", c1))
	must(t, s.PutCurtailStatus("n1", c2)) // replaces
	all, err = s.CurtailStatuses()
	must(t, err)
	if len(all) != 2 || !proto.Equal(all["n1"], c2) || !proto.Equal(all["n2"], c1) {
		t.Fatalf("curtail statuses: %v", all)
	}
	for _, node := range []string{"", "a/b", "a b", strings.Repeat("n", store.MaxIDLen+1)} {
		if err := s.PutCurtailStatus(node, c1); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("curtail status of %q: %v, want ErrInvalidKey", node, err)
		}
	}
	if all, _ := s.CurtailStatuses(); len(all) != 2 {
		t.Fatalf("refused statuses were stored: %v", all)
	}
}
