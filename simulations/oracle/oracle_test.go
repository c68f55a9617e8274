package oracle

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func w(miner string, ms int, writer string, epoch uint64, op string) Write {
	return Write{MinerID: miner, At: at(ms), Writer: writer, Epoch: epoch, Op: op}
}

func kinds(vs Violations) []Kind {
	var ks []Kind
	for _, v := range vs {
		ks = append(ks, v.Kind)
	}
	return ks
}

func TestNoOverlappingWriters(t *testing.T) {
	tests := []struct {
		name   string
		writes []Write
		want   []Kind
		// mention must appear in the first violation's String: the evidence a reader needs.
		mention []string
	}{
		{name: "empty"},
		{
			name: "clean handover, A then B with a higher epoch, on two miners",
			writes: []Write{
				w("m1", 0, "A", 1, "restart"), w("m1", 100, "A", 1, "addpool"),
				w("m2", 50, "A", 1, "restart"),
				w("m1", 200, "B", 2, "restart"), w("m2", 300, "B", 2, "restart"),
			},
		},
		{
			name: "clean: input out of time order is sorted per miner",
			writes: []Write{
				w("m1", 200, "B", 2, "restart"), w("m1", 0, "A", 1, "restart"), w("m1", 100, "A", 1, "stop"),
			},
		},
		{
			name: "clean: A regains the lease after B, with a newer epoch",
			writes: []Write{
				w("m1", 0, "A", 1, "x"), w("m1", 100, "B", 2, "x"), w("m1", 200, "A", 3, "x"),
			},
		},
		{
			name: "clean: writers without epochs that never interleave (ownership moved)",
			writes: []Write{
				w("m1", 0, "A", 0, "x"), w("m1", 10, "A", 0, "x"), w("m1", 20, "B", 0, "x"),
			},
		},
		{
			name: "split brain: the stale active writes after the standby's first write",
			writes: []Write{
				w("m1", 0, "A", 4, "restart"), w("m1", 100, "B", 5, "restart"), w("m1", 150, "A", 4, "stop"),
			},
			want:    []Kind{KindEpochRegression, KindOverlap},
			mention: []string{"miner m1", "A wrote \"stop\" with epoch 4", "B had written with epoch 5", "12:00:00.150"},
		},
		{
			name: "same instant from two writers counts as overlap",
			writes: []Write{
				w("m1", 0, "A", 1, "x"), w("m1", 100, "A", 1, "x"), w("m1", 100, "B", 2, "x"),
			},
			want:    []Kind{KindOverlap},
			mention: []string{"A (epoch 1) 12:00:00.000–12:00:00.100", "B (epoch 2)"},
		},
		{
			name: "two writers without epochs interleave",
			writes: []Write{
				w("m1", 0, "A", 0, "x"), w("m1", 10, "B", 0, "x"), w("m1", 20, "A", 0, "x"),
			},
			want: []Kind{KindOverlap},
		},
		{
			name: "epoch reused by another writer, even without overlap",
			writes: []Write{
				w("m1", 0, "A", 3, "x"), w("m1", 100, "B", 3, "x"),
			},
			want:    []Kind{KindEpochShared},
			mention: []string{"epoch 3 used by A", "and by B"},
		},
		{
			name: "untagged write after a tagged one",
			writes: []Write{
				w("m1", 0, "A", 2, "x"), w("m1", 100, "A", 0, "x"),
			},
			want: []Kind{KindEpochRegression},
		},
		{
			name: "a regression run is one violation with a count",
			writes: []Write{
				w("m1", 0, "B", 7, "x"), w("m1", 10, "A", 6, "x"), w("m1", 20, "A", 6, "y"), w("m1", 30, "A", 6, "z"),
			},
			want: []Kind{KindEpochRegression},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := NoOverlappingWriters(tc.writes)
			if got := kinds(vs); !slices.Equal(got, tc.want) {
				t.Fatalf("kinds = %v, want %v\n%v", got, tc.want, vs.Err())
			}
			if len(tc.want) == 0 {
				if err := vs.Err(); err != nil {
					t.Fatalf("Err() = %v on a clean history", err)
				}
				return
			}
			if !errors.Is(vs.Err(), ErrViolation) {
				t.Fatalf("Err() does not wrap ErrViolation")
			}
			for _, v := range vs {
				if v.Invariant != InvSingleWriter || v.MinerID == "" || len(v.Nodes) == 0 || len(v.Times) == 0 {
					t.Errorf("violation lacks evidence: %+v", v)
				}
			}
			for _, m := range tc.mention {
				if s := vs[0].String(); !strings.Contains(s, m) {
					t.Errorf("%q does not mention %q", s, m)
				}
			}
		})
	}
}

func TestRegressionRunCounted(t *testing.T) {
	vs := NoOverlappingWriters([]Write{
		w("m1", 0, "B", 7, "x"), w("m1", 10, "A", 6, "x"), w("m1", 20, "A", 6, "y"), w("m1", 30, "A", 6, "z"),
	})
	if len(vs) != 1 || vs[0].Count != 3 || !vs[0].Times[2].Equal(at(30)) {
		t.Fatalf("got %+v, want one regression counting 3 writes, last at +30ms", vs)
	}
}

func TestTenures(t *testing.T) {
	ts := Tenures([]Write{
		w("m2", 5, "A", 1, "x"),
		w("m1", 0, "A", 1, "x"), w("m1", 100, "A", 1, "x"), w("m1", 200, "B", 2, "x"),
	})
	want := []Tenure{
		{MinerID: "m1", Writer: "A", Epoch: 1, First: at(0), Last: at(100), Writes: 2},
		{MinerID: "m1", Writer: "B", Epoch: 2, First: at(200), Last: at(200), Writes: 1},
		{MinerID: "m2", Writer: "A", Epoch: 1, First: at(5), Last: at(5), Writes: 1},
	}
	if !slices.Equal(ts, want) {
		t.Fatalf("Tenures = %v, want %v", ts, want)
	}
}

// TestSingleWriterProperty: any history made of tenures that follow one another with rising epochs passes;
// one write by the previous holder inside the next tenure always fails.
func TestSingleWriterProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := []string{"A", "B", "C"}
		tenures := rapid.IntRange(1, 6).Draw(t, "tenures")
		var ws []Write
		ms, epoch := 0, uint64(0)
		type span struct {
			writer     string
			epoch      uint64
			start, end int
		}
		var spans []span
		prev := ""
		for range tenures {
			writer := rapid.SampledFrom(nodes).Draw(t, "writer")
			if writer == prev {
				continue
			}
			prev = writer
			epoch += uint64(rapid.IntRange(1, 3).Draw(t, "epochStep"))
			ms += rapid.IntRange(1, 1000).Draw(t, "gap")
			s := span{writer: writer, epoch: epoch, start: ms}
			for range rapid.IntRange(1, 5).Draw(t, "writes") {
				ws = append(ws, w("m", ms, writer, epoch, "op"))
				ms += rapid.IntRange(0, 50).Draw(t, "step")
			}
			s.end = ms
			spans = append(spans, s)
		}
		if vs := NoOverlappingWriters(ws); len(vs) != 0 {
			t.Fatalf("clean history failed: %v", vs.Err())
		}
		if len(spans) < 2 {
			return
		}
		i := rapid.IntRange(1, len(spans)-1).Draw(t, "intruded")
		old, cur := spans[i-1], spans[i]
		intrude := rapid.IntRange(cur.start, cur.end).Draw(t, "at")
		bad := append(slices.Clone(ws), w("m", intrude, old.writer, old.epoch, "late"))
		if vs := NoOverlappingWriters(bad); len(vs.Of(InvSingleWriter)) == 0 {
			t.Fatalf("a write by %s (epoch %d) at +%dms inside %s's tenure passed", old.writer, old.epoch, intrude, cur.writer)
		}
	})
}

func TestExactlyOnce(t *testing.T) {
	issued := []Issued{
		{CommandID: "c1", MinerIDs: []string{"m1", "m2"}, At: at(0), Action: "reboot"},
		{CommandID: "c2", MinerIDs: []string{"m1"}, At: at(10), Action: "stop"},
	}
	ex := func(cmd, miner, node string, ms int) Executed {
		return Executed{CommandID: cmd, MinerID: miner, Node: node, Epoch: 1, At: at(ms), Source: "audit"}
	}
	clean := []Executed{ex("c1", "m1", "A", 100), ex("c1", "m2", "A", 110), ex("c2", "m1", "A", 120)}
	tests := []struct {
		name     string
		executed []Executed
		acked    []Acked
		want     []Kind
		mention  string
	}{
		{name: "clean", executed: clean, acked: []Acked{
			{CommandID: "c1", Outcome: OutcomeAccepted, At: at(1)},
			{CommandID: "c1", MinerID: "m1", Outcome: OutcomeSucceeded, At: at(200)},
			{CommandID: "c2", Outcome: OutcomeAccepted, At: at(11)},
		}},
		{name: "clean: accepted, never executed, reported failed", executed: clean[:2], acked: []Acked{
			{CommandID: "c2", Outcome: OutcomeAccepted, At: at(11)},
			{CommandID: "c2", MinerID: "m1", Outcome: OutcomeFailed, At: at(300)},
		}},
		{name: "clean: issued, never accepted, never executed", executed: nil, acked: nil},
		{
			name:     "executed twice (failover re-ran it)",
			executed: append(slices.Clone(clean), Executed{CommandID: "c1", MinerID: "m2", Node: "B", Epoch: 2, At: at(500)}),
			want:     []Kind{KindDuplicate},
			mention:  "executed 2 times: by A epoch 1 at 12:00:00.110 (audit), by B epoch 2 at 12:00:00.500",
		},
		{
			name:     "accepted and lost",
			executed: clean[:2],
			acked:    []Acked{{CommandID: "c2", Outcome: OutcomeAccepted, At: at(11)}},
			want:     []Kind{KindLost},
			mention:  "command c2",
		},
		{
			name:     "reported succeeded but never executed on one miner",
			executed: clean[:1],
			acked:    []Acked{{CommandID: "c1", MinerID: "m2", Outcome: OutcomeSucceeded, At: at(300)}},
			want:     []Kind{KindLost},
			mention:  "miner m2",
		},
		{
			name:     "executed but never issued",
			executed: append(slices.Clone(clean), ex("ghost", "m1", "A", 50)),
			want:     []Kind{KindUnissued},
		},
		{
			name:     "executed on a miner the command does not name",
			executed: append(slices.Clone(clean), ex("c2", "m9", "A", 50)),
			want:     []Kind{KindWrongMiner},
		},
		{
			name:     "acknowledged but never issued",
			executed: clean,
			acked:    []Acked{{CommandID: "c9", Outcome: OutcomeAccepted, At: at(5)}},
			want:     []Kind{KindUnknownAck},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := ExactlyOnce(issued, tc.executed, tc.acked)
			if got := kinds(vs); !slices.Equal(got, tc.want) {
				t.Fatalf("kinds = %v, want %v\n%v", got, tc.want, vs.Err())
			}
			if tc.mention != "" && !strings.Contains(vs[0].String(), tc.mention) {
				t.Errorf("%q does not mention %q", vs[0], tc.mention)
			}
		})
	}
}

func TestExecutionsFromWrites(t *testing.T) {
	cw := func(ms int, writer, cmd, op string) Write {
		x := w("m1", ms, writer, 1, op)
		x.CommandID = cmd
		return x
	}
	writes := []Write{
		cw(0, "A", "c1", "addpool a"), cw(1, "A", "c1", "addpool b"), cw(2, "A", "c1", "switchpool 1"), // one run
		cw(3, "A", "", "read?"),
		cw(4, "A", "c2", "restart"),
		cw(5, "A", "c2", "restart"), // repeated op: a second execution
		cw(6, "B", "c2", "restart"), // another writer: a third
		cw(7, "A", "c3", "stop"),
	}
	got := ExecutionsFromWrites(writes)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.CommandID+"@"+e.Node)
	}
	if want := []string{"c1@A", "c2@A", "c2@A", "c2@B", "c3@A"}; !slices.Equal(ids, want) {
		t.Fatalf("executions %v, want %v", ids, want)
	}
	issued := []Issued{{CommandID: "c1", MinerIDs: []string{"m1"}}, {CommandID: "c2", MinerIDs: []string{"m1"}}, {CommandID: "c3", MinerIDs: []string{"m1"}}}
	vs := ExactlyOnce(issued, got, nil)
	if len(vs) != 1 || vs[0].Kind != KindDuplicate || vs[0].Count != 3 {
		t.Fatalf("want one duplicate of c2 counting 3, got %v", vs.Err())
	}
}

func TestNoForbiddenExecution(t *testing.T) {
	legit := []Executed{
		{CommandID: "c1", MinerID: "m1", Node: "A", Epoch: 1, At: at(100)},
		{CommandID: "c1", MinerID: "m2", Node: "A", Epoch: 1, At: at(101)},
	}
	attempts := []Attempt{
		{CommandID: "forged-1", Kind: AttemptForged, NodeID: "A", Seq: 9, KeyID: "k1", At: at(200), Detail: "signature byte 3 flipped"},
		{CommandID: "c1", Kind: AttemptReplayed, NodeID: "A", Seq: 1, KeyID: "k1", At: at(300)},
		{CommandID: "old-seq", Kind: AttemptOutOfOrder, NodeID: "A", Seq: 1, At: at(310)},
		{CommandID: "revoked", Kind: AttemptRevokedKey, NodeID: "A", KeyID: "k0", At: at(320)},
		{CommandID: "stale", Kind: AttemptStaleEpoch, NodeID: "B", Epoch: 1, At: at(330)},
	}
	tests := []struct {
		name     string
		executed []Executed
		want     int
		mention  string
	}{
		{name: "clean: nothing forbidden ran; the replay's original ran once", executed: legit},
		{
			name:     "forged command executed",
			executed: append(slices.Clone(legit), Executed{CommandID: "forged-1", MinerID: "m1", Node: "A", At: at(210)}),
			want:     1, mention: "forged attempt delivered to A at 12:00:00.200 (seq 9, key \"k1\", epoch 0): signature byte 3 flipped",
		},
		{
			name:     "replay executed again (seq check off)",
			executed: append(slices.Clone(legit), Executed{CommandID: "c1", MinerID: "m1", Node: "A", At: at(305)}),
			want:     1, mention: "original execution by A at 12:00:00.100 allowed",
		},
		{
			name: "out-of-order, revoked-key and stale-epoch each executed",
			executed: append(slices.Clone(legit),
				Executed{CommandID: "old-seq", MinerID: "m1", Node: "A", At: at(311)},
				Executed{CommandID: "revoked", MinerID: "m2", Node: "A", At: at(321)},
				Executed{CommandID: "stale", MinerID: "m1", Node: "B", At: at(331)},
			),
			want: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := NoForbiddenExecution(attempts, tc.executed)
			if len(vs) != tc.want {
				t.Fatalf("%d violations, want %d\n%v", len(vs), tc.want, vs.Err())
			}
			for _, v := range vs {
				if v.Kind != KindForbidden || v.Invariant != InvNoForbidden || v.MinerID == "" || v.CommandID == "" {
					t.Errorf("bad violation %+v", v)
				}
			}
			if tc.mention != "" && !strings.Contains(vs[0].String(), tc.mention) {
				t.Errorf("%q does not mention %q", vs[0], tc.mention)
			}
		})
	}
}

func TestNoLostTelemetry(t *testing.T) {
	k := func(node, miner string, ms int64) SampleKey {
		return SampleKey{NodeID: node, MinerID: miner, AtUnixMs: ms}
	}
	acked := []SampleKey{k("A", "m1", 1000), k("A", "m1", 2000), k("A", "m2", 1000), k("B", "m1", 1500)}
	tests := []struct {
		name   string
		stored []SampleKey
		want   []int // Count per violation
	}{
		{name: "clean, stored has extras and duplicates", stored: append(slices.Clone(acked), k("A", "m1", 3000), k("A", "m1", 1000))},
		{name: "one sample lost", stored: []SampleKey{k("A", "m1", 1000), k("A", "m2", 1000), k("B", "m1", 1500)}, want: []int{1}},
		{name: "everything lost: per (node, miner)", stored: nil, want: []int{2, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := NoLostTelemetry(acked, tc.stored)
			var counts []int
			for _, v := range vs {
				counts = append(counts, v.Count)
				if v.Kind != KindLostSample || v.MinerID == "" || len(v.Times) != 2 {
					t.Errorf("bad violation %+v", v)
				}
			}
			if !slices.Equal(counts, tc.want) {
				t.Fatalf("counts %v, want %v\n%v", counts, tc.want, vs.Err())
			}
		})
	}
}

func TestFailover(t *testing.T) {
	events := []LeaseEvent{
		{At: at(0), PairID: "p", NodeID: "A", Kind: LeaseGranted, Epoch: 1},
		{At: at(1000), PairID: "p", NodeID: "A", Kind: LeaseFault, Epoch: 1},
		{At: at(6500), PairID: "p", NodeID: "B", Kind: LeaseGranted, Epoch: 2},
		{At: at(20000), PairID: "p", NodeID: "B", Kind: LeaseFault, Epoch: 2},
		{At: at(27000), PairID: "p", NodeID: "A", Kind: LeaseGranted, Epoch: 3},
		{At: at(40000), PairID: "p", NodeID: "A", Kind: LeaseFault, Epoch: 3}, // nobody takes over
	}
	writes := []Write{
		w("m1", 500, "A", 1, "x"),
		w("m1", 6400, "B", 1, "x"), // before its grant, with an old epoch: not control (and a violation elsewhere)
		w("m1", 7000, "B", 2, "x"),
		w("m1", 29000, "A", 3, "x"),
		w("m1", 39000, "A", 3, "x"),
	}
	fs := FailoverDetails(events, writes)
	if len(fs) != 3 {
		t.Fatalf("%d failovers, want 3: %v", len(fs), fs)
	}
	if f := fs[0]; !f.InControl || f.To != "B" || f.Epoch != 2 || f.Time() != 6*time.Second || f.GrantTime() != 5500*time.Millisecond {
		t.Errorf("first failover %v", f)
	}
	if f := fs[1]; !f.InControl || f.To != "A" || f.Time() != 9*time.Second {
		t.Errorf("second failover %v", f)
	}
	if f := fs[2]; f.Granted || f.InControl {
		t.Errorf("third failover %v, want none", f)
	}
	if got := FailoverTimes(events, writes); !slices.Equal(got, []time.Duration{6 * time.Second, 9 * time.Second}) {
		t.Errorf("FailoverTimes = %v", got)
	}

	if vs := FailoverWithin(fs[:2], 10*time.Second); len(vs) != 0 {
		t.Errorf("within 10s: %v", vs.Err())
	}
	vs := FailoverWithin(fs, 8*time.Second)
	if got := kinds(vs); !slices.Equal(got, []Kind{KindSlowFailover, KindNoFailover}) {
		t.Fatalf("kinds %v\n%v", got, vs.Err())
	}
	if s := vs[0].String(); !strings.Contains(s, "B (epoch 2) failed at 12:00:20.000; A granted epoch 3 after 7s, first write after 9s (target 8s)") {
		t.Errorf("slow failover says %q", s)
	}
}

func TestFailoverGrantedNeverWrote(t *testing.T) {
	fs := FailoverDetails([]LeaseEvent{
		{At: at(0), NodeID: "A", Kind: LeaseFault, Epoch: 1},
		{At: at(5000), NodeID: "B", Kind: LeaseGranted, Epoch: 2},
	}, []Write{w("m1", 6000, "C", 2, "x")})
	if len(fs) != 1 || !fs[0].Granted || fs[0].InControl {
		t.Fatalf("%v", fs)
	}
	if vs := FailoverWithin(fs, time.Minute); len(vs) != 1 || vs[0].Kind != KindNoFailover || !strings.Contains(vs[0].Detail, "never wrote") {
		t.Fatalf("%v", vs)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	if s.N != 100 || s.Min != time.Millisecond || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond || s.Mean != 50500*time.Microsecond {
		t.Fatalf("Summarize = %+v", s)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("Summarize sorted its input")
	}
	if p := Percentile(ds[:50], 99); p != 100*time.Millisecond {
		t.Errorf("p99 of 50 = %s (nearest rank: the largest)", p)
	}
	if p := Percentile([]time.Duration{7}, 50); p != 7 {
		t.Errorf("p50 of one = %d", p)
	}
	if (Summarize(nil) != Summary{}) || Percentile(nil, 50) != 0 {
		t.Error("empty input")
	}
}

func TestLocalActionsAudited(t *testing.T) {
	local := []LocalAction{{CommandID: "l1", NodeID: "A", MinerID: "m1", At: at(0)}, {CommandID: "l2", NodeID: "A", MinerID: "m2", At: at(10)}}
	if vs := LocalActionsAudited(local, []string{"l2", "c1", "l1"}); len(vs) != 0 {
		t.Fatal(vs.Err())
	}
	vs := LocalActionsAudited(local, []string{"l1"})
	if len(vs) != 1 || vs[0].CommandID != "l2" || vs[0].Kind != KindUnaudited {
		t.Fatalf("%v", vs)
	}
}

func TestCheck(t *testing.T) {
	cw := func(ms int, writer string, epoch uint64, cmd string) Write {
		x := w("m1", ms, writer, epoch, "restart")
		x.CommandID = cmd
		return x
	}
	h := History{
		Writes: []Write{cw(100, "A", 1, "c1"), cw(7000, "B", 2, "c2")},
		Issued: []Issued{{CommandID: "c1", MinerIDs: []string{"m1"}}, {CommandID: "c2", MinerIDs: []string{"m1"}}},
		Acked:  []Acked{{CommandID: "c1", Outcome: OutcomeAccepted}, {CommandID: "c2", Outcome: OutcomeAccepted}},
		LeaseEvents: []LeaseEvent{
			{At: at(1000), NodeID: "A", Kind: LeaseFault, Epoch: 1},
			{At: at(6500), NodeID: "B", Kind: LeaseGranted, Epoch: 2},
		},
		FailoverTarget: 10 * time.Second,
		AckedSamples:   []SampleKey{{MinerID: "m1", AtUnixMs: 1}},
		StoredSamples:  []SampleKey{{MinerID: "m1", AtUnixMs: 1}},
	}
	r := Check(h)
	if err := r.Violations.Err(); err != nil {
		t.Fatal(err)
	}
	if r.FailoverTimes.N != 1 || r.FailoverTimes.Max != 6*time.Second {
		t.Fatalf("failover summary %v", r.FailoverTimes)
	}

	// The broken build: the old holder kept writing, a command ran twice, a sample vanished, failover slow.
	h.Writes = append(h.Writes, cw(7500, "A", 1, "c2"))
	h.StoredSamples = nil
	h.FailoverTarget = 5 * time.Second
	got := Check(h).Violations.ByInvariant()
	want := map[Invariant]int{InvSingleWriter: 2, InvExactlyOnce: 1, InvNoLostTelemetry: 1, InvRecovery: 1}
	for inv, n := range want {
		if got[inv] != n {
			t.Errorf("%s: %d violations, want %d (all: %v)", inv, got[inv], n, got)
		}
	}
}

func TestRecoveryWithin(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rs := []Recovery{
		{NodeID: "a", Fault: "kill", HealedAt: t0, Up: true, UpAt: t0.Add(time.Second)},
		{NodeID: "b", Fault: "wan", HealedAt: t0, Up: true, UpAt: t0.Add(12 * time.Second)},
		{NodeID: "c", Fault: "cloud", HealedAt: t0},
	}
	vs := RecoveryWithin(rs, 10*time.Second)
	if len(vs) != 2 || vs[0].Kind != KindSlowRecovery || vs[1].Kind != KindNoRecovery {
		t.Fatalf("violations %v", vs)
	}
	if rs[0].Time() != time.Second || rs[2].Time() != 0 {
		t.Fatalf("times %s %s", rs[0].Time(), rs[2].Time())
	}
}
