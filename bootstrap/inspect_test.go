package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/spool"
	nodestore "github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
	serverstore "github.com/hashfleet/hashfleet/server/store"
)

var inspectT0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// fixtures writes a node store with its spool beside it, and a server store, with known records.
func fixtures(t *testing.T) (nodeDir, spoolDir, serverDir string) {
	t.Helper()
	nodeDir, serverDir = t.TempDir(), t.TempDir()
	spoolDir = filepath.Join(nodeDir, spool.DirName)

	ns, err := nodestore.Open(nodestore.Options{DataDir: nodeDir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	at := inspectT0.UnixMilli()
	for seq := uint64(1); seq <= 3; seq++ {
		rec := &pb.AuditRecord{CommandId: fmt.Sprintf("c%d", seq), Actor: "ops@example.com", MonotonicSeq: seq, KeyId: "org-1/k1",
			MinerIds: []string{"sim-1"}, Code: pb.ResultCode_RESULT_CODE_RUNNING, AtUnixMs: at + int64(seq)*1000, LeaseEpoch: 2, NodeId: "node-1"}
		if err := ns.CommitCommand(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.AppendAudit(&pb.AuditRecord{CommandId: "replay", MonotonicSeq: 2, Code: pb.ResultCode_RESULT_CODE_REFUSED_SEQ,
		AtUnixMs: at + 5000, LeaseEpoch: 2}); err != nil {
		t.Fatal(err)
	}
	if err := ns.PutResult(&pb.CommandResultReport{CommandId: "c1", MonotonicSeq: 1, Done: true,
		Results: []*pb.MinerResult{{MinerId: "sim-1", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}}); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetOwnership([]*pb.Device{{MinerId: "sim-1"}, {MinerId: "sim-2"}, {MinerId: "sim-3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.ReserveBatchSeqs("telemetry", 1000); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := spool.DefaultConfig()
	cfg.Dir, cfg.Clock, cfg.Logger = spoolDir, clock.NewFake(inspectT0), quietLogger()
	sp, err := spool.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		tb := &pb.TelemetryBatch{NodeId: "node-1", BatchSeq: seq}
		for m := range 4 {
			tb.Samples = append(tb.Samples, &pb.Telemetry{MinerId: fmt.Sprintf("sim-%d", m), ObservedAtUnixMs: at + int64(seq)*5000,
				State: pb.MinerState_MINER_STATE_MINING, Hashrate_5SThs: 110})
		}
		if _, err := sp.Append(telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: seq, Telemetry: tb}); err != nil {
			t.Fatal(err)
		}
	}
	eb := &pb.EventBatch{NodeId: "node-1", BatchSeq: 1, Events: []*pb.Event{
		{EventId: "e1", Kind: pb.EventKind_EVENT_KIND_COMMAND_AUDIT, Audit: &pb.AuditRecord{CommandId: "c1"}},
		{EventId: "e2", Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE, MinerId: "sim-2"},
	}}
	if _, err := sp.Append(telemetry.Batch{Kind: telemetry.KindEvents, Seq: 1, Events: eb}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	ss, err := serverstore.Open(serverstore.Options{Dir: serverDir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Apply(serverstore.Batch{
		Devices:   []*pb.Device{{MinerId: "sim-1", NodeId: "node-1"}, {MinerId: "sim-2", NodeId: "node-1"}, {MinerId: "loose"}},
		Telemetry: []*pb.Telemetry{{MinerId: "sim-1", Hashrate_5SThs: 110}},
		Mark:      &serverstore.Mark{Node: "node-1", Kind: serverstore.KindTelemetry, Seq: 7},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ss.PutCommand(&pb.CommandRecord{CommandId: "op-1", MinerIds: []string{"sim-1"}, Status: pb.ResultCode_RESULT_CODE_RUNNING}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if err := ss.Enqueue("node-1", &pb.ControlCommand{CommandId: "op-1", NodeId: "node-1", MonotonicSeq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.RaiseSeq("node-2", 40); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.LoadOrStoreSecret([]byte("super-secret-enrollment-key-0001")); err != nil {
		t.Fatal(err)
	}
	for i, r := range []string{"refused", "accepted"} {
		if err := ss.AppendSecurityEvent(serverstore.SecurityEvent{At: inspectT0.Add(time.Duration(i) * time.Second), Node: "node-1",
			Kind: "open_session", Result: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	return nodeDir, spoolDir, serverDir
}

// checksums maps every file and directory under dir to its mode, size and content hash.
func checksums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		i, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p] = i.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%s %d %x", i.Mode(), len(b), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func inspectView(t *testing.T, o StoreInspectOptions) (string, error) {
	t.Helper()
	o.Now = func() time.Time { return inspectT0.Add(90 * time.Second) }
	var out bytes.Buffer
	err := RunStoreInspect(context.Background(), o, &out)
	return out.String(), err
}

func mustView(t *testing.T, o StoreInspectOptions, wants ...string) string {
	t.Helper()
	out, err := inspectView(t, o)
	if err != nil {
		t.Fatalf("%s %s %s: %v", o.Dir, o.View, o.Arg, err)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s %s %s: output lacks %q:\n%s", filepath.Base(o.Dir), o.View, o.Arg, w, out)
		}
	}
	return out
}

func mustJSON(t *testing.T, o StoreInspectOptions, v any) {
	t.Helper()
	o.JSON = true
	out := mustView(t, o)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s --json is not JSON: %v\n%s", o.View, err, out)
	}
}

func TestStoreInspectViews(t *testing.T) {
	nodeDir, spoolDir, serverDir := fixtures(t)
	before := map[string]map[string]string{}
	for _, d := range []string{nodeDir, serverDir} {
		before[d] = checksums(t, d)
	}

	t.Run("node", func(t *testing.T) {
		mustView(t, StoreInspectOptions{Dir: nodeDir}, "node: fleet node store", "seq high-water mark", "  3\n",
			"lease epoch", "owned devices", "audit records", "  4\n", "telemetry batch seqs reserved up to  1000",
			"a store of its own at "+spoolDir, "audit/", "hashfleet.v1.AuditRecord")
		var s inspect.Summary
		mustJSON(t, StoreInspectOptions{Dir: nodeDir}, &s)
		if s.Kind != "node" || *s.SeqHighWaterMark != 3 || *s.LeaseEpoch != 2 || *s.OwnedDevices != 3 {
			t.Fatalf("summary json %+v", s)
		}
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "prefixes"}, "node store at", "seq/mark", "seq-mark", "owner/devices", "batchseq/")
		out := mustView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: "seq/mark"}, `"seq": "3"`, "hashfleet.v1.SeqMark")
		_ = out
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: "cmd/2"}, "cmd/2", `"command_id": "c2"`, `"lease_epoch": "2"`)
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: "result/1"}, `"done": true`, "RESULT_CODE_SUCCEEDED")
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: "owner/devices"}, `"miner_id": "sim-3"`)
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "scan", Arg: "audit", Limit: 2}, "c1", "c2", "more keys follow")
		var sc struct {
			Records []inspect.Record `json:"records"`
			More    bool             `json:"more"`
		}
		mustJSON(t, StoreInspectOptions{Dir: nodeDir, View: "scan", Arg: "command", Limit: 10}, &sc)
		if len(sc.Records) != 3 || sc.More || sc.Records[2].Key != "cmd/3" {
			t.Fatalf("scan command json %+v", sc)
		}
		out = mustView(t, StoreInspectOptions{Dir: nodeDir, View: "audit", Tail: 2}, "c3", "RESULT_CODE_REFUSED_SEQ")
		if strings.Index(out, `"c3"`) > strings.Index(out, `"replay"`) {
			t.Fatalf("audit tail is not oldest first:\n%s", out)
		}
		var au struct {
			Records []inspect.Record `json:"records"`
		}
		mustJSON(t, StoreInspectOptions{Dir: nodeDir, View: "audit", Tail: 10}, &au)
		if len(au.Records) != 4 {
			t.Fatalf("audit json %d records", len(au.Records))
		}
		// The key the audit view prints gets the same record back.
		mustView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: au.Records[3].Key}, `"command_id": "replay"`)
		if _, err := inspectView(t, StoreInspectOptions{Dir: nodeDir, View: "get", Arg: "cmd/99"}); !errors.Is(err, inspect.ErrKeyNotFound) {
			t.Fatalf("missing key: %v", err)
		}
	})

	t.Run("spool", func(t *testing.T) {
		mustView(t, StoreInspectOptions{Dir: spoolDir}, "spool: fleet node offline spool", "spool depth", "4 batches, 14 items",
			"oldest entry", "1m30s old", "3 batches, 12 samples", "1 command audit / local command")
		var s inspect.Summary
		mustJSON(t, StoreInspectOptions{Dir: spoolDir}, &s)
		if *s.SpoolDepth != 4 || *s.SpoolItems != 14 || *s.OldestEntryAge != 90 {
			t.Fatalf("spool summary json %+v", s)
		}
		mustView(t, StoreInspectOptions{Dir: spoolDir, View: "get", Arg: "spool/t/2"}, "hashfleet.v1.TelemetryBatch", `"batch_seq": "2"`, `"miner_id": "sim-3"`)
		mustView(t, StoreInspectOptions{Dir: spoolDir, View: "get", Arg: "spool/m/t/2"}, `"items": 4`, `"variant": "raw"`)
		mustView(t, StoreInspectOptions{Dir: spoolDir, View: "scan", Arg: "events"}, "EVENT_KIND_COMMAND_AUDIT", "EVENT_KIND_STATE_CHANGE")
		mustView(t, StoreInspectOptions{Dir: spoolDir, View: "get", Arg: "spool/info"}, `"store": "hashfleet-node-spool"`)
		if _, err := inspectView(t, StoreInspectOptions{Dir: spoolDir, View: "audit"}); !errors.Is(err, inspect.ErrNoAudit) {
			t.Fatalf("spool audit: %v", err)
		}
	})

	t.Run("server", func(t *testing.T) {
		mustView(t, StoreInspectOptions{Dir: serverDir}, "server: cloud server store", "seq high-water mark", "40",
			"owned devices", "registered devices", "node node-2 command seq", "ingest mark telemetry/node-1")
		var s inspect.Summary
		mustJSON(t, StoreInspectOptions{Dir: serverDir}, &s)
		if s.Kind != "server" || *s.SeqHighWaterMark != 40 || *s.OwnedDevices != 2 {
			t.Fatalf("server summary %+v", s)
		}
		mustView(t, StoreInspectOptions{Dir: serverDir, View: "get", Arg: "nq/node-1/2"}, "hashfleet.v1.ControlCommand", `"monotonic_seq": "2"`)
		mustView(t, StoreInspectOptions{Dir: serverDir, View: "scan", Arg: "nq/node-1/"}, "nq/node-1/1", "nq/node-1/2")
		mustView(t, StoreInspectOptions{Dir: serverDir, View: "get", Arg: "cmdact/op-1"}, "empty value (index entry)")
		mustView(t, StoreInspectOptions{Dir: serverDir, View: "prefixes"}, "dev/", "device", "3", "mark/")
		// The server's audit view is its security event log; the enrollment secret is never shown.
		out := mustView(t, StoreInspectOptions{Dir: serverDir, View: "audit", Tail: 1}, `"result": "accepted"`, "JSON (SecurityEvent)")
		if strings.Contains(out, "refused") {
			t.Fatalf("audit --tail 1 shows more than the newest event:\n%s", out)
		}
		out = mustView(t, StoreInspectOptions{Dir: serverDir, View: "get", Arg: "secret/enroll"}, `"redacted": true`)
		for _, o := range []StoreInspectOptions{{Dir: serverDir, View: "get", Arg: "secret/enroll", JSON: true}, {Dir: serverDir, View: "scan", Arg: "secret/"}} {
			got, _ := inspectView(t, o)
			out += got
		}
		if strings.Contains(out, "super-secret") || strings.Contains(out, "73757065722d736563726574") {
			t.Fatalf("the enrollment secret was printed:\n%s", out)
		}
		mustView(t, StoreInspectOptions{Dir: serverDir, View: "get", Arg: "nsent/node-1/2"}, "hashfleet.v1.ControlCommand")
	})

	for d, sums := range before {
		after := checksums(t, d)
		for p, c := range sums {
			if after[p] != c {
				t.Errorf("inspect changed %s", p)
			}
		}
		for p := range after {
			if _, ok := sums[p]; !ok {
				t.Errorf("inspect created %s", p)
			}
		}
	}
}

func TestStoreInspectErrors(t *testing.T) {
	nodeDir, _, _ := fixtures(t)
	ns, err := nodestore.Open(nodestore.Options{DataDir: nodeDir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inspectView(t, StoreInspectOptions{Dir: nodeDir})
	_ = ns.Close()
	if !errors.Is(err, inspect.ErrLocked) || !strings.Contains(err.Error(), "admin endpoint") {
		t.Fatalf("running node's store: %v", err)
	}
	for _, c := range []struct {
		o    StoreInspectOptions
		says string
	}{
		{StoreInspectOptions{Dir: nodeDir, View: "tree"}, "unknown view"},
		{StoreInspectOptions{Dir: nodeDir, View: "get"}, "needs a KEY"},
		{StoreInspectOptions{View: "summary"}, "--dir is required"},
		{StoreInspectOptions{Dir: t.TempDir()}, "empty directory"},
		{StoreInspectOptions{Dir: nodeDir, Kind: "spool"}, ""},
	} {
		_, err := inspectView(t, c.o)
		if c.says == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.says)
		}
	}
}
