package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Stores is one open store under test.
type Stores struct {
	// Store is the cloud store. Required.
	Store store.Store
	// Pairs is the pair-declaration store (nil: those tests are skipped).
	Pairs store.PairStore
	// Sites keeps site policies and curtailment statuses (nil: those tests are skipped).
	Sites store.Sites
	// Lease is the lease store. Required.
	Lease lease.Store
	// Records are enrollment records and security events (nil: those tests are skipped).
	Records NodeRecords
	// Reopen closes the store and opens the same durable data again (nil: the durability test is skipped).
	Reopen func(t *testing.T) Stores
}

// NodeRecords is what both stores keep for enrollment and the security log.
type NodeRecords interface {
	PutNodeRecord(rec *pb.NodeRecord) error
	NodeRecord(id string) (*pb.NodeRecord, error)
	NodeRecords() ([]*pb.NodeRecord, error)
	UpdateNodeRecord(id string, fn func(*pb.NodeRecord) error) (*pb.NodeRecord, error)
	AppendSecurityEvent(e store.SecurityEvent) error
	SecurityEvents(limit int) ([]store.SecurityEvent, error)
}

// Suite describes the store implementation under test.
type Suite struct {
	// Open returns a fresh, empty store; the implementation closes it in t.Cleanup.
	Open func(t *testing.T) Stores
	// StrictSeq: Enqueue refuses a seq already sent to the node (store.ErrExists). The shared store must;
	// the single-member store may overwrite.
	StrictSeq bool
}

// Run runs every case of the suite as a subtest of t.
func Run(t *testing.T, s Suite) {
	cases := []struct {
		name string
		fn   func(t *testing.T, st Stores, s Suite)
	}{
		{"Registry", testRegistry},
		{"Commands", testCommands},
		{"NodeQueue", testNodeQueue},
		{"Commissioning", testCommissioning},
		{"Reconciliation", testReconciliation},
		{"Pairs", testPairs},
		{"PairClaims", testPairClaims},
		{"PairHostile", testPairHostile},
		{"PairConcurrentClaim", testPairConcurrentClaim},
		{"Sites", testSites},
		{"NodeRecords", testNodeRecords},
		{"HostileIDs", testHostileIDs},
		{"LeaseCAS", testLeaseCAS},
		{"LeaseConcurrentCAS", testLeaseConcurrentCAS},
		{"Durability", testDurability},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, s.Open(t), s) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func protosEqual[T proto.Message](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d\ngot:  %v\nwant: %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s[%d]: got %v, want %v", what, i, got[i], want[i])
		}
	}
}

func dev(miner, node string) *pb.Device {
	return &pb.Device{MinerId: miner, NodeId: node, Address: "10.0.0.1:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
}

func testRegistry(t *testing.T, st Stores, _ Suite) {
	s := st.Store
	pend := dev("m3", "n1")
	t1 := &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: 1000, State: pb.MinerState_MINER_STATE_MINING, Hashrate_5SThs: 110}
	must(t, s.Apply(store.Batch{
		Devices:   []*pb.Device{dev("m2", "n1"), dev("m1", "n1")},
		Telemetry: []*pb.Telemetry{t1},
		Pending:   []*pb.Device{pend},
		Audit: []*pb.AuditRecord{{NodeId: "n1", CommandId: "a2", AtUnixMs: 20}, {NodeId: "n1", CommandId: "a1", AtUnixMs: 10},
			{NodeId: "n1", CommandId: "a3", AtUnixMs: 20}, {NodeId: "n2", CommandId: "b1", AtUnixMs: 5}},
		Mark: &store.Mark{Node: "n1", Kind: store.KindTelemetry, Seq: 7},
	}))
	devs, err := s.Devices()
	must(t, err)
	protosEqual(t, "devices (ordered by miner id)", devs, []*pb.Device{dev("m1", "n1"), dev("m2", "n1")})
	tel, err := s.LatestTelemetry()
	must(t, err)
	protosEqual(t, "latest telemetry", tel, []*pb.Telemetry{t1})
	p, err := s.PendingDevices()
	must(t, err)
	protosEqual(t, "pending", p, []*pb.Device{pend})
	audit, err := s.NodeAudit("n1", 0)
	must(t, err)
	var ids []string
	for _, a := range audit {
		ids = append(ids, a.GetCommandId())
	}
	if want := []string{"a1", "a2", "a3"}; !slices.Equal(ids, want) {
		t.Fatalf("audit of n1: %v, want %v (time, then arrival)", ids, want)
	}
	audit, err = s.NodeAudit("n1", 2)
	must(t, err)
	if len(audit) != 2 || audit[0].GetCommandId() != "a2" || audit[1].GetCommandId() != "a3" {
		t.Fatalf("newest 2 audit records: %v", audit)
	}

	// A newer sample replaces the latest; registering the pending device removes it from pending; the mark
	// moves.
	t2 := proto.Clone(t1).(*pb.Telemetry)
	t2.ObservedAtUnixMs, t2.Hashrate_5SThs = 2000, 90
	must(t, s.Apply(store.Batch{Devices: []*pb.Device{dev("m3", "n1")}, Telemetry: []*pb.Telemetry{t2},
		Mark: &store.Mark{Node: "n1", Kind: store.KindTelemetry, Seq: 9}}))
	must(t, s.Apply(store.Batch{Mark: &store.Mark{Node: "n2", Kind: store.KindEvents, Seq: 3}}))
	tel, err = s.LatestTelemetry()
	must(t, err)
	protosEqual(t, "latest telemetry after replace", tel, []*pb.Telemetry{t2})
	if p, err := s.PendingDevices(); err != nil || len(p) != 0 {
		t.Fatalf("pending after registering: %v, %v", p, err)
	}
	marks, err := s.Marks()
	must(t, err)
	sort.Slice(marks, func(i, j int) bool { return marks[i].Kind+marks[i].Node < marks[j].Kind+marks[j].Node })
	want := []store.Mark{{Node: "n2", Kind: store.KindEvents, Seq: 3}, {Node: "n1", Kind: store.KindTelemetry, Seq: 9}}
	if !slices.Equal(marks, want) {
		t.Fatalf("marks %v, want %v", marks, want)
	}
	// An empty batch is fine.
	must(t, s.Apply(store.Batch{}))
}

func testCommands(t *testing.T, st Stores, _ Suite) {
	s := st.Store
	if _, err := s.Command("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing command: %v, want ErrNotFound", err)
	}
	if _, err := s.CommandByIdempotencyKey("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing idempotency key: %v, want ErrNotFound", err)
	}
	c2 := &pb.CommandRecord{CommandId: "c2", MinerIds: []string{"m1"}, IdempotencyKey: "k2", Status: pb.ResultCode_RESULT_CODE_RUNNING,
		NodeSeqs: map[string]uint64{"n1": 1}}
	c1 := &pb.CommandRecord{CommandId: "c1", MinerIds: []string{"m1"}, Status: pb.ResultCode_RESULT_CODE_SUCCEEDED, FinishedAtUnixMs: 5}
	must(t, s.PutCommand(c2))
	must(t, s.PutCommand(c1))
	got, err := s.CommandByIdempotencyKey("k2")
	must(t, err)
	protosEqual(t, "by idempotency key", []*pb.CommandRecord{got}, []*pb.CommandRecord{c2})
	all, err := s.Commands()
	must(t, err)
	protosEqual(t, "commands (ordered by id)", all, []*pb.CommandRecord{c1, c2})
	act, err := s.ActiveCommands()
	must(t, err)
	protosEqual(t, "active", act, []*pb.CommandRecord{c2})
	// Finishing leaves the active set; the idempotency key still finds it.
	c2.Status, c2.FinishedAtUnixMs = pb.ResultCode_RESULT_CODE_SUCCEEDED, 9
	must(t, s.PutCommand(c2))
	if act, err := s.ActiveCommands(); err != nil || len(act) != 0 {
		t.Fatalf("active after finish: %v, %v", act, err)
	}
	got, err = s.Command("c2")
	must(t, err)
	protosEqual(t, "finished", []*pb.CommandRecord{got}, []*pb.CommandRecord{c2})
	if got, err := s.CommandByIdempotencyKey("k2"); err != nil || got.GetCommandId() != "c2" {
		t.Fatalf("idempotency key after finish: %v, %v", got, err)
	}
}

func testNodeQueue(t *testing.T, st Stores, suite Suite) {
	s := st.Store
	seq, q, err := s.NodeQueue("n1")
	must(t, err)
	if seq != 0 || len(q) != 0 {
		t.Fatalf("fresh node: seq %d queue %v", seq, q)
	}
	cmds := []*pb.ControlCommand{
		{CommandId: "c1", NodeId: "n1", MonotonicSeq: 1, Payload: []byte{1}},
		{CommandId: "c2", NodeId: "n1", MonotonicSeq: 2, Payload: []byte{2}},
		{CommandId: "c3", NodeId: "n1", MonotonicSeq: 3, Payload: []byte{3}},
	}
	for _, c := range []*pb.ControlCommand{cmds[2], cmds[0], cmds[1]} { // order of arrival does not matter
		must(t, s.Enqueue("n1", c))
	}
	must(t, s.Dequeue("n1", 2))
	must(t, s.Dequeue("n1")) // nothing
	seq, q, err = s.NodeQueue("n1")
	must(t, err)
	if seq != 3 {
		t.Fatalf("seq %d, want 3", seq)
	}
	protosEqual(t, "queue in seq order", q, []*pb.ControlCommand{cmds[0], cmds[2]})
	sent, err := s.SentCommand("n1", 2)
	must(t, err)
	protosEqual(t, "sent after dequeue", []*pb.ControlCommand{sent}, []*pb.ControlCommand{cmds[1]})
	if _, err := s.SentCommand("n1", 99); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unsent seq: %v, want ErrNotFound", err)
	}
	must(t, s.RaiseSeq("n2", 40))
	must(t, s.RaiseSeq("n2", 3)) // never lowers
	must(t, s.RaiseSeq("n1", 2)) // below: no change
	if seq, _, _ := s.NodeQueue("n2"); seq != 40 {
		t.Fatalf("n2 seq %d, want 40", seq)
	}
	if seq, _, _ := s.NodeQueue("n1"); seq != 3 {
		t.Fatalf("n1 seq %d, want 3", seq)
	}
	ids, err := s.NodeIDs()
	must(t, err)
	sort.Strings(ids)
	if !slices.Equal(ids, []string{"n1", "n2"}) {
		t.Fatalf("node ids %v", ids)
	}
	if suite.StrictSeq {
		dup := &pb.ControlCommand{CommandId: "other", NodeId: "n1", MonotonicSeq: 3}
		if err := s.Enqueue("n1", dup); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second command under seq 3: %v, want ErrExists", err)
		}
		sent, err := s.SentCommand("n1", 3)
		must(t, err)
		protosEqual(t, "first command under seq 3 kept", []*pb.ControlCommand{sent}, []*pb.ControlCommand{cmds[2]})
	}
}

func testCommissioning(t *testing.T, st Stores, _ Suite) {
	s := st.Store
	for i := 1; i <= 5; i++ {
		must(t, s.PutScan(&pb.ScanRecord{ScanId: fmt.Sprintf("scan-%02d", i), NodeId: "n1", State: "done",
			Found: []*pb.Device{dev(fmt.Sprintf("m%d", i), "n1")}, FoundCount: 1}))
		must(t, s.PutPairing(&pb.PairingRecord{PairingId: fmt.Sprintf("pair-%02d", i), NodeId: "n1"}))
	}
	sc, err := s.Scan("scan-03")
	must(t, err)
	if len(sc.GetFound()) != 1 || sc.GetFoundCount() != 1 {
		t.Fatalf("one scan keeps its devices: %v", sc)
	}
	scans, err := s.Scans(2)
	must(t, err)
	if len(scans) != 2 || scans[0].GetScanId() != "scan-04" || scans[1].GetScanId() != "scan-05" {
		t.Fatalf("newest 2 scans, oldest first: %v", scans)
	}
	if len(scans[0].GetFound()) != 0 {
		t.Fatalf("scan listing must leave devices out: %v", scans[0])
	}
	pairs, err := s.Pairings(3)
	must(t, err)
	if len(pairs) != 3 || pairs[0].GetPairingId() != "pair-03" || pairs[2].GetPairingId() != "pair-05" {
		t.Fatalf("newest 3 pairings: %v", pairs)
	}
	if _, err := s.Pairing("pair-09"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing pairing: %v", err)
	}
	if _, err := s.Scan("scan-09"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing scan: %v", err)
	}
}

func testReconciliation(t *testing.T, st Stores, _ Suite) {
	s := st.Store
	wm, err := s.LocalWatermark("n1")
	if err != nil || wm != nil {
		t.Fatalf("fresh watermark: %v, %v", wm, err)
	}
	h := func(ms int64, l uint32) *pb.HLC { return &pb.HLC{WallMs: ms, Logical: l, NodeId: "n1"} }
	audit := func(c *pb.LocalCommand) *pb.AuditRecord {
		return &pb.AuditRecord{CommandId: c.GetCommandId(), AtUnixMs: c.GetHlc().GetWallMs(), LocalOrigin: true}
	}
	cmds := []*pb.LocalCommand{{CommandId: "l2", Hlc: h(20, 0)}, {CommandId: "l1", Hlc: h(10, 3)}}
	fresh, wm, err := s.ApplyLocalCommands("n1", cmds, audit)
	must(t, err)
	if fresh != 2 || !proto.Equal(wm, h(20, 0)) {
		t.Fatalf("first backfill: fresh %d wm %v", fresh, wm)
	}
	// Replayed backfill: nothing new, the watermark never goes back.
	fresh, wm, err = s.ApplyLocalCommands("n1", []*pb.LocalCommand{{CommandId: "l1", Hlc: h(10, 3)}, {CommandId: "l3", Hlc: h(15, 0)}}, audit)
	must(t, err)
	if fresh != 1 || !proto.Equal(wm, h(20, 0)) {
		t.Fatalf("replayed backfill: fresh %d wm %v", fresh, wm)
	}
	got, err := s.LocalWatermark("n1")
	must(t, err)
	if !proto.Equal(got, h(20, 0)) {
		t.Fatalf("stored watermark %v", got)
	}
	lc, err := s.LocalCommandsOf("n1")
	must(t, err)
	if len(lc) != 3 || lc[0].GetCommandId() != "l1" || lc[2].GetCommandId() != "l3" {
		t.Fatalf("local commands by id: %v", lc)
	}
	a, err := s.NodeAudit("n1", 0)
	must(t, err)
	if len(a) != 3 || !a[0].GetLocalOrigin() || a[0].GetNodeId() != "n1" {
		t.Fatalf("local commands audited once each: %v", a)
	}

	c := &pb.Conflict{ConflictId: "cf1", NodeId: "n1", MinerId: "m1", Status: store.ConflictOpen}
	created, err := s.CreateConflict(c)
	must(t, err)
	again, err := s.CreateConflict(&pb.Conflict{ConflictId: "cf1", Status: store.ConflictOpen, Message: "other"})
	must(t, err)
	if !created || again {
		t.Fatalf("create conflict: %v then %v", created, again)
	}
	_, err = s.CreateConflict(&pb.Conflict{ConflictId: "cf2", Status: store.ConflictOpen})
	must(t, err)
	res, err := s.ResolveConflict("cf1", func(c *pb.Conflict) error { c.Status, c.ResolvedBy = store.ConflictDiscarded, "op"; return nil })
	must(t, err)
	if res.GetStatus() != store.ConflictDiscarded {
		t.Fatalf("resolved: %v", res)
	}
	if _, err := s.ResolveConflict("cf1", func(*pb.Conflict) error { return nil }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second resolution: %v, want ErrExists", err)
	}
	if _, err := s.ResolveConflict("cf9", func(*pb.Conflict) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown conflict: %v, want ErrNotFound", err)
	}
	boom := errors.New("operator changed their mind")
	if _, err := s.ResolveConflict("cf2", func(c *pb.Conflict) error { c.Status = store.ConflictApplied; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing resolution: %v", err)
	}
	open, err := s.Conflicts(store.ConflictOpen)
	must(t, err)
	if len(open) != 1 || open[0].GetConflictId() != "cf2" {
		t.Fatalf("open conflicts (a failed resolution changes nothing): %v", open)
	}
	all, err := s.Conflicts("")
	must(t, err)
	if len(all) != 2 || all[0].GetConflictId() != "cf1" {
		t.Fatalf("all conflicts: %v", all)
	}
}

func testPairs(t *testing.T, st Stores, _ Suite) {
	if st.Pairs == nil {
		t.Skip("no pair store")
	}
	p := st.Pairs
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &store.PairRecord{ID: "pb", OrgID: "o", Site: "s", Members: [2]string{"n1", "n2"}, Standby: "n2", Devices: []string{"m1"},
		KeyEnvelopes: map[string][]byte{"n1": {1, 2}}, DeclaredBy: "op", DeclaredAt: at,
		Failovers: []store.PairFailover{{From: "n1", To: "n2", Epoch: 2, At: at, Kind: "failover"}}}
	a := &store.PairRecord{ID: "pa", OrgID: "o", Members: [2]string{"n3", "n4"}, DeclaredAt: at}
	must(t, p.PutPair(b))
	must(t, p.PutPair(a))
	got, err := p.Pairs()
	must(t, err)
	if len(got) != 2 || got[0].ID != "pa" || got[1].ID != "pb" || got[1].Failovers[0].Epoch != 2 || !got[1].DeclaredAt.Equal(at) ||
		string(got[1].KeyEnvelopes["n1"]) != "\x01\x02" {
		t.Fatalf("pairs: %+v", got)
	}
	must(t, p.DeletePair("pa"))
	if err := p.DeletePair("pa"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
	if err := p.PutPair(nil); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("nil pair: %v", err)
	}
}

func testHostileIDs(t *testing.T, st Stores, _ Suite) {
	s := st.Store
	bad := []string{"", "a/b", "a b", "tab\there", strings.Repeat("x", store.MaxIDLen+1), "nl\n", "nul\x00"}
	for _, id := range bad {
		checks := map[string]error{
			"Enqueue":   s.Enqueue(id, &pb.ControlCommand{MonotonicSeq: 1}),
			"RaiseSeq":  s.RaiseSeq(id, 1),
			"PutScan":   s.PutScan(&pb.ScanRecord{ScanId: id}),
			"PutPair":   s.PutPairing(&pb.PairingRecord{PairingId: id}),
			"ApplyMark": s.Apply(store.Batch{Mark: &store.Mark{Node: id, Kind: store.KindTelemetry, Seq: 1}}),
			"Pending":   s.Apply(store.Batch{Pending: []*pb.Device{dev("m1", id)}}),
			"Audit":     s.Apply(store.Batch{Audit: []*pb.AuditRecord{{NodeId: id}}}),
		}
		_, _, err := s.NodeQueue(id)
		checks["NodeQueue"] = err
		_, err = s.NodeAudit(id, 1)
		checks["NodeAudit"] = err
		_, err = s.SentCommand(id, 1)
		checks["SentCommand"] = err
		_, _, err = s.ApplyLocalCommands(id, nil, nil)
		checks["ApplyLocalCommands"] = err
		for name, err := range checks {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", name, id, err)
			}
		}
	}
	for _, id := range []string{"", strings.Repeat("y", store.MaxIDLen+1), "ctl\x01"} {
		if err := s.Apply(store.Batch{Devices: []*pb.Device{dev(id, "n1")}}); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("device %q: %v", id, err)
		}
		if err := s.Apply(store.Batch{Telemetry: []*pb.Telemetry{{MinerId: id}}}); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("telemetry %q: %v", id, err)
		}
		if err := s.PutCommand(&pb.CommandRecord{CommandId: id}); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("command %q: %v", id, err)
		}
	}
	// A batch with one bad record writes nothing.
	err := s.Apply(store.Batch{Devices: []*pb.Device{dev("good", "n1"), dev("", "n1")}})
	if !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("mixed batch: %v", err)
	}
	if d, _ := s.Devices(); len(d) != 0 {
		t.Fatalf("a refused batch wrote %v", d)
	}
	// Ids with quotes, SQL and unicode are just ids.
	odd := []string{`q'uote`, `x";DROP_TABLE_devices;--`, "ünïcödé", `back\slash`, "%_*"}
	for _, id := range odd {
		must(t, s.Apply(store.Batch{Devices: []*pb.Device{dev(id, "n1")}}))
		must(t, s.RaiseSeq(id, 5))
		if seq, _, err := s.NodeQueue(id); err != nil || seq != 5 {
			t.Fatalf("odd id %q: seq %d, %v", id, seq, err)
		}
	}
	d, err := s.Devices()
	must(t, err)
	if len(d) != len(odd) {
		t.Fatalf("odd ids stored: %v", d)
	}
}

func leaseState(pair, holder string, epoch, version uint64, exp time.Time) lease.State {
	s := lease.NewState(pair, [2]string{"a", "b"})
	s.Holder, s.Epoch, s.Version, s.ExpiresAt = holder, epoch, version, exp
	return s
}

func testLeaseCAS(t *testing.T, st Stores, _ Suite) {
	l := st.Lease
	if _, err := l.Load("p1"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("load missing: %v, want ErrNotFound", err)
	}
	exp := time.Unix(1_700_000_000, 123456789)
	v1 := leaseState("p1", "a", 1, 1, exp)
	must(t, l.CompareAndSet("p1", 0, v1))
	got, err := l.Load("p1")
	must(t, err)
	if !got.DurableEqual(v1) {
		t.Fatalf("load %+v, want %+v", got, v1)
	}
	if err := l.CompareAndSet("p1", 0, v1); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("second first-write: %v, want ErrConflict", err)
	}
	v2 := leaseState("p1", "a", 1, 2, exp.Add(time.Second)) // renewal
	must(t, l.CompareAndSet("p1", 1, v2))
	// A stale writer deciding from version 1 loses.
	if err := l.CompareAndSet("p1", 1, leaseState("p1", "b", 2, 2, exp)); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("stale CAS: %v, want ErrConflict", err)
	}
	// Malformed: wrong pair, version not expect+1, empty pair.
	for name, err := range map[string]error{
		"wrong pair":   l.CompareAndSet("p1", 2, leaseState("p2", "a", 1, 3, exp)),
		"version skip": l.CompareAndSet("p1", 2, leaseState("p1", "a", 1, 5, exp)),
		"empty pair":   l.CompareAndSet("", 0, leaseState("", "a", 1, 1, exp)),
	} {
		if !errors.Is(err, lease.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
	// Release keeps the epoch; the next grant is epoch+1.
	must(t, l.CompareAndSet("p1", 2, leaseState("p1", "", 1, 3, time.Time{})))
	must(t, l.CompareAndSet("p1", 3, leaseState("p1", "b", 2, 4, exp)))
	got, err = l.Load("p1")
	must(t, err)
	if got.Holder != "b" || got.Epoch != 2 || got.Version != 4 || got.Members != [2]string{"a", "b"} {
		t.Fatalf("after release and grant: %+v", got)
	}
	// Other pairs are independent.
	must(t, l.CompareAndSet("p2", 0, leaseState("p2", "a", 1, 1, exp)))
}

// testLeaseConcurrentCAS: many writers decide from the same version at once, as two activations of one
// Lease grain do around a membership change; exactly one commits each round.
func testLeaseConcurrentCAS(t *testing.T, st Stores, _ Suite) {
	l := st.Lease
	const writers, rounds = 8, 15
	exp := time.Unix(1_800_000_000, 0)
	must(t, l.CompareAndSet("race", 0, leaseState("race", "a", 1, 1, exp)))
	holders := map[uint64]string{1: "a"}
	for r := range rounds {
		cur, err := l.Load("race")
		must(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var wins []string
		var errs []error
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				who := []string{"a", "b"}[w%2]
				next := leaseState("race", who, cur.Epoch+1, cur.Version+1, exp.Add(time.Duration(r)*time.Second))
				err := l.CompareAndSet("race", cur.Version, next)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins = append(wins, who)
				} else if !errors.Is(err, lease.ErrConflict) {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: losers must see ErrConflict: %v", r, errs)
		}
		if len(wins) != 1 {
			t.Fatalf("round %d: %d writers committed from version %d (%v); exactly one may", r, len(wins), cur.Version, wins)
		}
		after, err := l.Load("race")
		must(t, err)
		if after.Version != cur.Version+1 || after.Epoch != cur.Epoch+1 || after.Holder != wins[0] {
			t.Fatalf("round %d: stored %+v, winner %s", r, after, wins[0])
		}
		if _, dup := holders[after.Epoch]; dup {
			t.Fatalf("epoch %d issued twice", after.Epoch)
		}
		holders[after.Epoch] = after.Holder
	}
}

func testDurability(t *testing.T, st Stores, _ Suite) {
	if st.Reopen == nil {
		t.Skip("store is not durable")
	}
	s := st.Store
	must(t, s.Apply(store.Batch{Devices: []*pb.Device{dev("m1", "n1")}, Mark: &store.Mark{Node: "n1", Kind: store.KindEvents, Seq: 4}}))
	must(t, s.PutCommand(&pb.CommandRecord{CommandId: "c1", IdempotencyKey: "k1", Status: pb.ResultCode_RESULT_CODE_RUNNING}))
	must(t, s.Enqueue("n1", &pb.ControlCommand{CommandId: "c1", NodeId: "n1", MonotonicSeq: 7}))
	must(t, st.Lease.CompareAndSet("p", 0, leaseState("p", "a", 3, 1, time.Unix(1_900_000_000, 5))))
	st2 := st.Reopen(t)
	s = st2.Store
	if d, err := s.Devices(); err != nil || len(d) != 1 {
		t.Fatalf("devices after reopen: %v, %v", d, err)
	}
	if m, err := s.Marks(); err != nil || len(m) != 1 || m[0].Seq != 4 {
		t.Fatalf("marks after reopen: %v, %v", m, err)
	}
	if c, err := s.CommandByIdempotencyKey("k1"); err != nil || c.GetCommandId() != "c1" {
		t.Fatalf("command after reopen: %v, %v", c, err)
	}
	if a, err := s.ActiveCommands(); err != nil || len(a) != 1 {
		t.Fatalf("active after reopen: %v, %v", a, err)
	}
	if seq, q, err := s.NodeQueue("n1"); err != nil || seq != 7 || len(q) != 1 {
		t.Fatalf("queue after reopen: %d %v %v", seq, q, err)
	}
	if l, err := st2.Lease.Load("p"); err != nil || l.Epoch != 3 || l.Holder != "a" || l.Version != 1 || !l.ExpiresAt.Equal(time.Unix(1_900_000_000, 5)) {
		t.Fatalf("lease after reopen: %+v %v", l, err)
	}
}

func testNodeRecords(t *testing.T, st Stores, _ Suite) {
	r := st.Records
	if r == nil {
		t.Skip("no node records")
	}
	if _, err := r.NodeRecord("n1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing record: %v", err)
	}
	b := &pb.NodeRecord{NodeId: "n2", OrgId: "o", IdentityFingerprint: "SHA256:bb", IdentityPublicKey: []byte{2}}
	a := &pb.NodeRecord{NodeId: "n1", OrgId: "o", IdentityFingerprint: "SHA256:aa", IdentityPublicKey: []byte{1}}
	must(t, r.PutNodeRecord(b))
	must(t, r.PutNodeRecord(a))
	if err := r.PutNodeRecord(&pb.NodeRecord{NodeId: "n1", OrgId: "evil"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taking an enrolled node id: %v, want ErrExists", err)
	}
	if err := r.PutNodeRecord(&pb.NodeRecord{NodeId: "a/b"}); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("bad node id: %v", err)
	}
	all, err := r.NodeRecords()
	must(t, err)
	protosEqual(t, "node records by id", all, []*pb.NodeRecord{a, b})
	got, err := r.UpdateNodeRecord("n1", func(n *pb.NodeRecord) error { n.Confirmed = true; return nil })
	must(t, err)
	if !got.GetConfirmed() {
		t.Fatalf("update: %v", got)
	}
	boom := errors.New("refused")
	if _, err := r.UpdateNodeRecord("n2", func(n *pb.NodeRecord) error { n.Revoked = true; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if n2, _ := r.NodeRecord("n2"); n2.GetRevoked() {
		t.Fatal("a failed update was stored")
	}
	if _, err := r.UpdateNodeRecord("n9", func(*pb.NodeRecord) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing node: %v", err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, kind := range []string{"enroll", "confirm", "open_session"} {
		must(t, r.AppendSecurityEvent(store.SecurityEvent{At: at.Add(time.Duration(i) * time.Second), Node: "n1", Kind: kind, Result: "accepted"}))
	}
	ev, err := r.SecurityEvents(2)
	must(t, err)
	if len(ev) != 2 || ev[0].Kind != "confirm" || ev[1].Kind != "open_session" || !ev[1].At.Equal(at.Add(2*time.Second)) {
		t.Fatalf("newest 2 security events, oldest first: %+v", ev)
	}
}
