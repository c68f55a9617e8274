package automation

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func trusted(t *testing.T) TrustedPools {
	t.Helper()
	tp, err := NewTrustedPools(
		"stratum+tcp://pool.example.com:3333",
		"stratum+ssl://*.secure.example.org:*",
		"stratum+tcp://192.0.2.10:3333",
		"stratum+tcp://[2001:db8::1]:3333",
		"stratum+tcp://xn--bcher-kva.example:3333", // bücher.example in punycode
	)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestTrustedPoolsAllows(t *testing.T) {
	tp := trusted(t)
	cases := []struct {
		url  string
		ok   bool
		want string // a fragment of the reason
	}{
		// Allowed.
		{"stratum+tcp://pool.example.com:3333", true, "matches"},
		{"STRATUM+TCP://POOL.Example.COM:3333", true, "matches"},  // case-insensitive scheme and host
		{"stratum+tcp://pool.example.com.:3333", true, "matches"}, // FQDN trailing dot
		{"stratum+tcp://pool.example.com:3333/", true, "matches"}, // a bare trailing slash
		{"stratum+ssl://eu.secure.example.org:443", true, "matches"},
		{"stratum+ssl://a.b.secure.example.org:25", true, "matches"}, // wildcard at any depth
		{"stratum+tcp://192.0.2.10:3333", true, "matches"},
		{"stratum+tcp://[2001:db8:0::1]:3333", true, "matches"}, // IPv6 compared canonically
		{"stratum+tcp://xn--bcher-kva.example:3333", true, "matches"},

		// Scheme: ssl and tcp are different pools as far as trust goes.
		{"stratum+ssl://pool.example.com:3333", false, "not in the site's trusted pools"},
		{"stratum+tcp://eu.secure.example.org:443", false, "not in"}, // downgrade to plain TCP
		{"stratum2+tcp://pool.example.com:3333", false, "not in"},
		{"pool.example.com:3333", false, "no scheme"},
		{"://pool.example.com:3333", false, "no scheme"},
		{"stratum+tcp:/pool.example.com:3333", false, "no scheme"},

		// Ports.
		{"stratum+tcp://pool.example.com:3334", false, "not in"},
		{"stratum+tcp://pool.example.com", false, "no port"},
		{"stratum+tcp://pool.example.com:", false, "port"},
		{"stratum+tcp://pool.example.com:03333", false, "leading zeros"},
		{"stratum+tcp://pool.example.com:+3333", false, "port"},
		{"stratum+tcp://pool.example.com:65536", false, "port"},
		{"stratum+tcp://pool.example.com:0", false, "port"},
		{"stratum+tcp://pool.example.com:3333:4444", false, "':'"},

		// Userinfo tricks: the host shown first is not the host connected to.
		{"stratum+tcp://pool.example.com:3333@evil.com:3333", false, "userinfo"},
		{"stratum+tcp://pool.example.com@evil.com:3333", false, "userinfo"},
		{"stratum+tcp://worker:x@pool.example.com:3333", false, "userinfo"},
		{"stratum+tcp://evil.com:3333#@pool.example.com:3333", false, "userinfo"},
		{"stratum+tcp://evil.com:3333?@pool.example.com:3333", false, "userinfo"},
		{"stratum+tcp://evil.com:3333\\@pool.example.com:3333", false, "backslash"},
		{"stratum+tcp://evil.com:3333/pool.example.com:3333", false, "path"},
		{"stratum+tcp://pool.example.com:3333#frag", false, "query or fragment"},
		{"stratum+tcp://pool.example.com:3333?x=1", false, "query or fragment"},

		// Look-alike hosts.
		{"stratum+tcp://pool.example.com.evil.com:3333", false, "not in"},
		{"stratum+tcp://evilpool.example.com:3333", false, "not in"},
		{"stratum+tcp://pool-example.com:3333", false, "not in"},
		{"stratum+ssl://secure.example.org:443", false, "not in"},  // the wildcard never covers the apex
		{"stratum+ssl://xsecure.example.org:443", false, "not in"}, // label boundary
		{"stratum+ssl://eu.secure.example.org.evil.io:443", false, "not in"},
		{"stratum+tcp://pool.example.com..:3333", false, "empty or over-long label"},
		{"stratum+tcp://.pool.example.com:3333", false, "empty or over-long label"},
		{"stratum+tcp://pool_example.com:3333", false, "not a letter"},
		{"stratum+tcp://*.example.com:3333", false, "not a letter"},

		// IDN: Unicode (and homographs of trusted names) never match; punycode matches only as written.
		{"stratum+tcp://bücher.example:3333", false, "non-ASCII"},
		{"stratum+tcp://pооl.example.com:3333", false, "non-ASCII"}, // Cyrillic о
		{"stratum+tcp://ｐool.example.com:3333", false, "non-ASCII"}, // full-width p
		{"stratum+tcp://xn--pl-8sba.example.com:3333", false, "not in"},
		{"stratum+tcp://pool%2eexample.com:3333", false, "percent"},

		// Whitespace and control characters.
		{" stratum+tcp://pool.example.com:3333", false, "space"},
		{"stratum+tcp://pool.example.com:3333 ", false, "space"},
		{"stratum+tcp://pool.example.com:3333\n", false, "control"},
		{"stratum+tcp://pool.example.com\t:3333", false, "control"},
		{"", false, "empty"},
		{strings.Repeat("a", 600), false, "longer"},

		// IP addresses in unusual forms.
		{"stratum+tcp://192.000.2.10:3333", false, "unusual form"},
		{"stratum+tcp://3221226058:3333", false, "unusual form"},
		{"stratum+tcp://192.0.2.010:3333", false, "unusual form"},
		{"stratum+tcp://[::ffff:192.0.2.10]:3333", false, "IPv6"},
		{"stratum+tcp://[fe80::1%25eth0]:3333", false, "percent"},
		{"stratum+tcp://2001:db8::1:3333", false, "':'"},
		{"stratum+tcp://[2001:db8::1:3333", false, "unterminated"},
	}
	for _, c := range cases {
		ok, why := tp.Allows(c.url)
		if ok != c.ok || !strings.Contains(why, c.want) {
			t.Errorf("Allows(%q) = %v, %q; want %v and a reason containing %q", c.url, ok, why, c.ok, c.want)
		}
	}
}

func TestTrustedPoolPatternsRefused(t *testing.T) {
	for _, p := range []string{
		"pool.example.com:3333",
		"stratum+tcp://*.com:3333",          // too broad
		"stratum+tcp://*.192.0.2.1:3333",    // wildcard on an IP
		"stratum+tcp://pool.example.com",    // no port
		"stratum+tcp://po*ol.example.com:1", // wildcard inside a label
		"stratum+tcp://user@pool.example.com:3333",
		"stratum+tcp://bücher.example:3333",
	} {
		if _, err := NewTrustedPools(p); !errors.Is(err, ErrBadPoolPattern) {
			t.Errorf("%q: %v", p, err)
		}
	}
	var tp TrustedPools
	if err := json.Unmarshal([]byte(`["stratum+tcp://a.example.com:1", "nope"]`), &tp); !errors.Is(err, ErrBadPoolPattern) {
		t.Fatal(err)
	}
}

func TestTrustedPoolsEmptyAndPools(t *testing.T) {
	if ok, why := (TrustedPools{}).Allows("stratum+tcp://anything:1"); !ok || !strings.Contains(why, "not enforced") {
		t.Fatal(why)
	}
	tp := trusted(t)
	ok, why := tp.AllowsPools([]*pb.Pool{{Url: "stratum+tcp://pool.example.com:3333"}, {Url: "stratum+tcp://evil.com:3333"}})
	if ok || !strings.Contains(why, "pool 2") {
		t.Fatal(why)
	}
	if ok, _ := tp.AllowsPools([]*pb.Pool{{Url: "stratum+tcp://pool.example.com:3333"}}); !ok {
		t.Fatal("refused a trusted pool")
	}
	g := NewPoolGuard()
	if ok, why := g.Allows("stratum+tcp://evil.com:3333"); !ok || !strings.Contains(why, "no site policy") {
		t.Fatal(why)
	}
	g.set(4, tp)
	if ok, why := g.AllowsPools([]*pb.Pool{{Url: "stratum+tcp://evil.com:3333"}}); ok || !strings.Contains(why, "v4") {
		t.Fatal(why)
	}
	var nilGuard *PoolGuard
	if ok, _ := nilGuard.Allows("x"); !ok {
		t.Fatal("a nil guard enforces nothing")
	}
	b, _ := json.Marshal(tp)
	var back TrustedPools
	if err := json.Unmarshal(b, &back); err != nil || len(back.Patterns()) != 5 {
		t.Fatal(err, back.Patterns())
	}
}
