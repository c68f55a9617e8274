package cgminer

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

func TestParseStrings(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`"plain"`, "plain"},
		{`"q\"b\\s\/"`, `q"b\s/`},
		{`"\n\t\r\b\f"`, "\n\t\r\b\f"},
		{`"caf\u00e9"`, "café"},
		{`"\ud83d\ude00!"`, "😀!"},
		{`"\ud83dx"`, "\uFFFDx"},       // lone high surrogate
		{`"\uZZZZ"`, "uZZZZ"},          // malformed \u: kept as text
		{`"\q"`, "q"},                  // unknown escape tolerated
		{"\"raw\nline\"", "raw\nline"}, // control characters tolerated
	} {
		var d doc
		if err := d.parse([]byte(c.in)); err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := string(d.nodes[0].raw); got != c.want {
			t.Errorf("%s = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseStructure(t *testing.T) {
	var d doc
	if err := d.parse([]byte(" {\"a\" : [1, {\"b\":true}, null ,] , \"C D\":\"x\",}\x00\x00")); err != nil {
		t.Fatal(err)
	}
	a := d.get(0, "a")
	if d.nodes[a].kind != kindArray {
		t.Fatalf("a is %v", d.nodes[a].kind)
	}
	var kinds []kind
	for c := d.nodes[a].first; c >= 0; c = d.nodes[c].next {
		kinds = append(kinds, d.nodes[c].kind)
	}
	if len(kinds) != 3 || kinds[0] != kindNumber || kinds[1] != kindObject || kinds[2] != kindNull {
		t.Errorf("array kinds %v", kinds)
	}
	if got := string(d.text(d.get(0, "cd"))); got != "x" {
		t.Errorf(`"C D" = %q`, got)
	}
	if d.get(0, "missing") != -1 || d.get(a, "a") != -1 {
		t.Error("get found what is not there")
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "   ", "{", `{"a"`, `{"a":`, `{"a":1`, `{"a" 1}`, `{1:2}`, `[1 2]`, `[{}{`, `[1]{`, `"abc`, `{"a":1}}`, "tr", "-"} {
		var d doc
		err := d.parse([]byte(in))
		if in == "-" {
			// A lone minus scans as a number token that reads as missing: not a structural error.
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if !errors.Is(err, miners.ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", in, err)
		}
	}
}

func TestFold(t *testing.T) {
	for _, k := range []string{"GHS 5s", "GHS5s", "ghs_5s", "Ghs-5S"} {
		if got := string(fold(nil, []byte(k))); got != "ghs5s" {
			t.Errorf("fold(%q) = %q", k, got)
		}
	}
	if got := fold(nil, []byte(strings.Repeat("a", 100))); len(got) != maxKey {
		t.Errorf("fold kept %d bytes, want %d", len(got), maxKey)
	}
}

func TestMaxOfList(t *testing.T) {
	var d doc
	if err := d.parse([]byte(`["44-44-61-60", "7", 8, "", "x-y", "50,52 49"]`)); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		v  float64
		ok bool
	}{{61, true}, {7, true}, {8, true}, {0, false}, {0, false}, {52, true}}
	i := 0
	for c := d.nodes[0].first; c >= 0; c = d.nodes[c].next {
		if v, ok := d.maxOfList(c); v != want[i].v || ok != want[i].ok {
			t.Errorf("element %d: %v %v, want %v", i, v, ok, want[i])
		}
		i++
	}
}

// readAll runs everything a poll and a write command do with a reply, without the network.
func readAll(b []byte) (*pb.Telemetry, error) {
	var d doc
	if err := d.parse(b); err != nil {
		return nil, err
	}
	in := &interner{}
	if r, err := d.reply("restart"); err == nil {
		d.status("restart", r)
	}
	s := sample{strings: in}
	t := &pb.Telemetry{}
	var errs []error
	for _, c := range pollCommands {
		errs = append(errs, readSection(&d, c, &s, t))
	}
	s.fill(t)
	return t, errors.Join(errs...)
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		s19Joined,
		joined(summaryReply(`"GHS 5s":nan`), statsReply(`{"a":1}{"temp2_1":"1-2"}`), poolsReply(onePool)),
		`{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}],"id":1}`,
		`{"STATUS":"S","SUMMARY":[{"MHS av":"1e3"}]}`,
		`"\ud83d\ude00\u12"`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`,
		"{\"a\":-nan,\"b\":-inf,\"c\":1e999}\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tel, err := readAll(b)
		if err == nil && tel == nil {
			t.Fatal("nil telemetry without an error")
		}
	})
}

func BenchmarkParseReply(b *testing.B) {
	body := []byte(s19Joined)
	buf := make([]byte, len(body))
	var d doc
	in := &interner{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		copy(buf, body)
		if err := d.parse(buf); err != nil {
			b.Fatal(err)
		}
		s := sample{strings: in}
		t := &pb.Telemetry{}
		for _, c := range pollCommands {
			if err := readSection(&d, c, &s, t); err != nil {
				b.Fatal(err)
			}
		}
		s.fill(t)
	}
}
