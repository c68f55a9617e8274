package inspect

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toy is a small schema: one exact key, an audit log keyed by big-endian seq, and a free-form prefix.
func toy() Schema {
	return Schema{
		Kind: "toy", Doc: "a test store",
		Prefixes: []Prefix{
			{Name: "mark", Prefix: "cfg/mark", Exact: true, Message: &pb.SeqMark{}},
			{Name: "log", Prefix: "log/", Message: &pb.AuditRecord{}, Audit: true, Match: Uint64Key, FormatKey: FormatUint64, ParseKey: ParseUint64},
			{Name: "device", Prefix: "dev/", Message: &pb.Device{}},
		},
		Summarize: func(r *Reader, s *Summary) error {
			var m pb.SeqMark
			if _, err := r.GetProto([]byte("cfg/mark"), &m); err != nil {
				return err
			}
			seq := m.GetSeq()
			s.SeqHighWaterMark = &seq
			n := r.Count([]byte("dev/"))
			s.OwnedDevices = &n
			s.Add("log records", r.Count([]byte("log/")))
			return nil
		},
	}
}

// other is a second schema sharing no prefix with toy.
func other() Schema {
	return Schema{Kind: "other", Prefixes: []Prefix{{Name: "x", Prefix: "x/", Message: &pb.SeqMark{}}}}
}

func logKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte("log/"), seq) }

func writeStore(t *testing.T, dir string, kv map[string][]byte) {
	t.Helper()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		for k, v := range kv {
			if err := txn.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustProto(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func fixture(t *testing.T) string {
	dir := t.TempDir()
	kv := map[string][]byte{
		"cfg/mark":   mustProto(&pb.SeqMark{Seq: 42, UpdatedAtUnixMs: 1000}),
		"dev/m1":     mustProto(&pb.Device{MinerId: "m1", Address: "10.0.0.1:4028"}),
		"dev/m2":     mustProto(&pb.Device{MinerId: "m2"}),
		"junk/thing": {0xde, 0xad, 0xbe, 0xef},
	}
	for seq := uint64(1); seq <= 5; seq++ {
		kv[string(logKey(seq))] = mustProto(&pb.AuditRecord{CommandId: "c" + string(rune('0'+seq)), MonotonicSeq: seq})
	}
	writeStore(t, dir, kv)
	return dir
}

// checksums maps every file under dir to its content hash, mode and size.
func checksums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return out
	}
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

func sameFiles(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, c := range before {
		if after[p] != c {
			t.Errorf("%s changed (or vanished)", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

func open(t *testing.T, dir string, mutate ...func(*Config)) *Inspector {
	t.Helper()
	cfg := DefaultConfig(dir, toy(), other())
	for _, m := range mutate {
		m(&cfg)
	}
	in, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func TestViewsOnAFixture(t *testing.T) {
	dir := fixture(t)
	before := checksums(t, dir)
	in := open(t, dir)
	if in.Kind() != "toy" {
		t.Fatalf("kind %q", in.Kind())
	}

	s, err := in.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Keys != 9 || *s.SeqHighWaterMark != 42 || *s.OwnedDevices != 2 || s.Facts[0].Value != 5 {
		t.Fatalf("summary %+v", s)
	}
	var text bytes.Buffer
	if err := WriteSummary(&text, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"toy: a test store", "seq high-water mark  42", "owned devices        2", "log records          5", "(unknown)", "hashfleet.v1.AuditRecord"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary text lacks %q:\n%s", want, text.String())
		}
	}

	ps := in.Prefixes()
	if len(ps) != 4 || ps[1].Name != "log" || ps[1].Keys != 5 || ps[3].Name != "(unknown)" || ps[3].Keys != 1 || ps[3].ValueBytes != 4 {
		t.Fatalf("prefixes %+v", ps)
	}

	r, err := in.Get("log/3")
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(r.Value, &rec); err != nil || rec["command_id"] != "c3" || rec["monotonic_seq"] != "3" {
		t.Fatalf("get log/3: %s (%v)", r.Value, err)
	}
	if r.Key != "log/3" || r.Prefix != "log" || r.Type != "hashfleet.v1.AuditRecord" {
		t.Fatalf("record %+v", r)
	}
	if r, err := in.Get("0x" + "6c6f672f0000000000000003"); err != nil || r.Key != "log/3" {
		t.Fatalf("get by hex: %+v %v", r, err)
	}
	r, err = in.Get("junk/thing")
	if err != nil || r.Value != nil || !strings.Contains(r.Hex, "de ad be ef") || !strings.Contains(r.Note, "no prefix") {
		t.Fatalf("unknown prefix: %+v %v", r, err)
	}
	if _, err := in.Get("log/99"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := in.Get("log/x"); err == nil || !strings.Contains(err.Error(), "decimal") {
		t.Fatalf("bad key text: %v", err)
	}

	rs, more, err := in.Scan("log", 2)
	if err != nil || len(rs) != 2 || !more || rs[0].Key != "log/1" || rs[1].Key != "log/2" {
		t.Fatalf("scan log limit 2: %v more=%v %v", rs, more, err)
	}
	rs, more, err = in.Scan("dev/", 0)
	if err != nil || len(rs) != 2 || more || rs[1].Key != "dev/m2" {
		t.Fatalf("scan dev/: %v %v %v", rs, more, err)
	}
	if rs, _, err := in.Scan("nothing/", 5); err != nil || len(rs) != 0 {
		t.Fatalf("scan of an empty prefix: %v %v", rs, err)
	}

	rs, err = in.Audit(3)
	if err != nil || len(rs) != 3 || rs[0].Key != "log/3" || rs[2].Key != "log/5" {
		t.Fatalf("audit tail 3: %v %v", rs, err)
	}
	text.Reset()
	if err := WriteRecords(&text, rs, false); err != nil || !strings.Contains(text.String(), `"command_id": "c5"`) {
		t.Fatalf("records text: %s %v", text.String(), err)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rs); err != nil {
		t.Fatal(err)
	}
	var back []Record
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != 3 || back[2].Prefix != "log" {
		t.Fatalf("json round trip: %v %s", err, js.String())
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, before, checksums(t, dir))

	// A schema without an audit log says so.
	in2 := open(t, dir, func(c *Config) { c.Kind = "other" })
	if _, err := in2.Audit(1); !errors.Is(err, ErrNoAudit) {
		t.Fatalf("audit of a store without one: %v", err)
	}
}

func TestDirectoriesThatCannotBeInspected(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	_ = os.WriteFile(file, []byte("x"), 0o600)
	notBadger := t.TempDir()
	_ = os.WriteFile(filepath.Join(notBadger, "notes.txt"), []byte("hello"), 0o600)
	corrupt := fixture(t)
	_ = os.WriteFile(filepath.Join(corrupt, "MANIFEST"), []byte("this is not a manifest"), 0o600)
	foreign := t.TempDir()
	writeStore(t, foreign, map[string][]byte{"users/alice": []byte("{}"), "users/bob": []byte("{}")})
	empty := t.TempDir()
	writeStore(t, empty, nil)

	for _, c := range []struct {
		name, dir string
		want      error
		says      string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), ErrNotBadger, "no such directory"},
		{"a file", file, ErrNotBadger, "is a file"},
		{"empty directory", t.TempDir(), ErrNotBadger, "empty directory"},
		{"not Badger", notBadger, ErrNotBadger, "no MANIFEST (it holds notes.txt)"},
		{"corrupt", corrupt, ErrCorrupt, "magic"},
		{"foreign", foreign, ErrForeign, `"users/alice"`},
		{"no keys", empty, ErrEmpty, "no keys"},
	} {
		before := checksums(t, c.dir)
		_, err := Open(DefaultConfig(c.dir, toy(), other()))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.want, c.says)
		}
		sameFiles(t, before, checksums(t, c.dir))
	}
}

func TestLockedStoreSaysToAskTheRunningNode(t *testing.T) {
	dir := fixture(t)
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = Open(DefaultConfig(dir, toy()))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "admin endpoint") {
		t.Fatalf("locked store: %v", err)
	}
}

// A store whose process was killed needs its log replayed: a clear error, or a recovered private copy.
func TestUncleanStoreAndRecoverCopy(t *testing.T) {
	live := t.TempDir()
	db, err := badgerkv.Open(badgerkv.Options{Dir: live, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("cfg/mark"), mustProto(&pb.SeqMark{Seq: 7}))
	}); err != nil {
		t.Fatal(err)
	}
	// What kill -9 leaves: the files as they are while the process holds them.
	dir := t.TempDir()
	ents, _ := os.ReadDir(live)
	for _, e := range ents {
		if e.Name() != "LOCK" {
			if err := copySparse(filepath.Join(live, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = db.Close()
	before := checksums(t, dir)

	_, err = Open(DefaultConfig(dir, toy()))
	if !errors.Is(err, ErrUnclean) || !strings.Contains(err.Error(), "--recover-copy") {
		t.Fatalf("unclean store: %v", err)
	}
	tmp := t.TempDir()
	in := open(t, dir, func(c *Config) { c.RecoverCopy, c.TempDir = true, tmp })
	s, err := in.Summary()
	if err != nil || !s.Recovered || *s.SeqHighWaterMark != 7 {
		t.Fatalf("recovered copy summary %+v, %v", s, err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("recovery copy left behind: %v", left)
	}
	sameFiles(t, before, checksums(t, dir))
}

func TestAmbiguousAndForcedKind(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, map[string][]byte{"x/1": mustProto(&pb.SeqMark{Seq: 1})})
	twin := other()
	twin.Kind = "twin"
	if _, err := Open(DefaultConfig(dir, other(), twin)); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two schemas that fit equally: %v", err)
	}
	cfg := DefaultConfig(dir, other(), twin)
	cfg.Kind = "twin"
	in, err := Open(cfg)
	if err != nil || in.Kind() != "twin" {
		t.Fatalf("forced kind: %v", err)
	}
	_ = in.Close()
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty config valid")
	}
}

// View inspects a store the caller holds open: every view reads one snapshot, and nothing is written.
func TestViewOfALiveStore(t *testing.T) {
	dir := fixture(t)
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Check(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("Check of a held store: %v", err)
	}
	cfg := DefaultConfig(dir, toy(), other())
	err = View(db, cfg, func(in *Inspector) error {
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set([]byte("cfg/mark"), mustProto(&pb.SeqMark{Seq: 43}))
		}); err != nil {
			return err
		}
		s, err := in.Summary()
		if err != nil {
			return err
		}
		if in.Kind() != "toy" || in.Dir() != dir || *s.SeqHighWaterMark != 42 || s.Keys != 9 {
			t.Errorf("view of the snapshot: kind %s mark %d keys %d", in.Kind(), *s.SeqHighWaterMark, s.Keys)
		}
		r, err := in.Get("cfg/mark")
		if err != nil || !strings.Contains(string(r.Value), `"42"`) {
			t.Errorf("get in the snapshot: %s %v", r.Value, err)
		}
		return in.Close() // nothing to release
	})
	if err != nil {
		t.Fatal(err)
	}
	// The next view sees the write.
	_ = View(db, cfg, func(in *Inspector) error {
		if s, _ := in.Summary(); *s.SeqHighWaterMark != 43 {
			t.Errorf("next view: mark %d", *s.SeqHighWaterMark)
		}
		return nil
	})
}

func TestCheck(t *testing.T) {
	if err := Check(fixture(t)); err != nil {
		t.Fatalf("clean store: %v", err)
	}
	if err := Check(t.TempDir()); !errors.Is(err, ErrNotBadger) {
		t.Fatalf("empty dir: %v", err)
	}
}
