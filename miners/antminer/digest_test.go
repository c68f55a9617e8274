package antminer

import (
	"strings"
	"testing"
)

// RFC 7616 §3.9.1: the same request signed with SHA-256 and with MD5.
func TestDigestRFC7616Vectors(t *testing.T) {
	for _, tc := range []struct{ alg, want string }{
		{"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
	} {
		c := challenge{realm: "http-auth@example.org", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			alg: tc.alg, qop: "auth", opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"}
		got := c.response("Mufasa", "Circle of Life", "GET", "/dir/index.html", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
		if got != tc.want {
			t.Errorf("%s: response %s, want %s", tc.alg, got, tc.want)
		}
	}
}

// RFC 2617 §3.5: MD5 with qop=auth.
func TestDigestRFC2617Vector(t *testing.T) {
	c := challenge{realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", qop: "auth"}
	got := c.response("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "00000001", "0a4f113b")
	if want := "6629fae49393a05397450978507c4ef1"; got != want {
		t.Fatalf("response %s, want %s", got, want)
	}
}

func TestParseChallenges(t *testing.T) {
	cs, schemes := parseChallenges([]string{
		`Basic realm="x", Digest realm="a, b", qop="auth-int", nonce="n1", algorithm=MD5`,
		`Digest realm="r", qop="auth,auth-int", algorithm=SHA-256, nonce="n2", opaque="o", stale=TRUE, userhash=true`,
		`Digest realm="r", nonce="n3"`,
		`Digest realm="unterminated`,
	})
	if strings.Join(schemes, ",") != "Basic,Digest,Digest,Digest,Digest" {
		t.Fatalf("schemes %q", schemes)
	}
	if len(cs) < 3 || cs[0].realm != "a, b" || cs[0].qop != "-" || cs[1].qop != "auth" || !cs[1].stale || !cs[1].userhash || cs[1].opaque != "o" || cs[2].qop != "" {
		t.Fatalf("challenges %+v", cs)
	}
	best, ok := pick(cs)
	if !ok || best.nonce != "n2" {
		t.Fatalf("picked %+v", best)
	}
	if _, ok := pick(cs[:1]); ok {
		t.Fatal("picked an auth-int-only challenge")
	}
	d := digest{user: "u", pass: "p"}
	d.adopt(best)
	h := d.authorization("GET", "/x")
	for _, part := range []string{`username="` + hexHash(hashFor("SHA-256"), "u", "r") + `"`, `uri="/x"`, "qop=auth", "nc=00000001", "userhash=true", `opaque="o"`, "algorithm=SHA-256"} {
		if !strings.Contains(h, part) {
			t.Errorf("authorization %q lacks %q", h, part)
		}
	}
	if h2 := d.authorization("GET", "/x"); !strings.Contains(h2, "nc=00000002") {
		t.Errorf("second authorization %q", h2)
	}
	d.nextNonce(`rspauth="abc", nextnonce="n9", qop=auth`)
	if d.ch.nonce != "n9" || d.nc != 0 {
		t.Errorf("nextnonce not adopted: %+v nc=%d", d.ch, d.nc)
	}
}
