package discovery

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseTargetsAccepts(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		lim  Limits
		n    int
		want string
	}{
		{[]string{"10.0.0.5"}, Limits{}, 1, "10.0.0.5"},
		{[]string{"10.0.0.0/24"}, Limits{}, 254, "10.0.0.1-10.0.0.254"},
		{[]string{"10.0.0.7/24"}, Limits{}, 254, "10.0.0.1-10.0.0.254"}, // host bits masked
		{[]string{"10.0.0.0/31"}, Limits{}, 2, "10.0.0.0-10.0.0.1"},
		{[]string{"10.0.0.9/32"}, Limits{}, 1, "10.0.0.9"},
		{[]string{"127.1.0.0/24"}, Limits{}, 256, "127.1.0.0-127.1.0.255"}, // loopback keeps .0 and .255
		{[]string{"10.0.0.10-10.0.0.50"}, Limits{}, 41, "10.0.0.10-10.0.0.50"},
		{[]string{"10.0.0.10-50"}, Limits{}, 41, "10.0.0.10-10.0.0.50"},
		{[]string{"10.0.0.250-10.0.1.5"}, Limits{}, 12, "10.0.0.250-10.0.1.5"},
		{[]string{"192.168.1.1-1"}, Limits{}, 1, "192.168.1.1"},
		{[]string{"172.16.0.1, 172.31.255.254"}, Limits{}, 2, "172.16.0.1, 172.31.255.254"},
		{[]string{"10.0.0.1 10.0.0.3\n10.0.0.2;10.0.0.9"}, Limits{}, 4, "10.0.0.1-10.0.0.3, 10.0.0.9"},
		// Duplicates and overlaps collapse.
		{[]string{"10.0.0.1", "10.0.0.1", "10.0.0.0/30", "10.0.0.1-2"}, Limits{}, 2, "10.0.0.1-10.0.0.2"},
		{[]string{"10.0.0.0/24", "10.0.0.0/24", "10.0.0.100-10.0.1.10"}, Limits{}, 266, "10.0.0.1-10.0.1.10"}, // the range adds 10.0.0.255,
		// Exactly the limit, twice over, is fine: the union counts.
		{[]string{"10.1.0.0-10.1.255.255", "10.1.0.0-10.1.255.255"}, Limits{}, 65536, "10.1.0.0-10.1.255.255"},
		{[]string{"8.8.8.8"}, Limits{AllowPublic: true}, 1, "8.8.8.8"},
		{[]string{"169.254.1.1"}, Limits{AllowPublic: true}, 1, "169.254.1.1"},
		{[]string{"9.255.255.250-10.0.0.2"}, Limits{AllowPublic: true}, 9, "9.255.255.250-10.0.0.2"},
	} {
		tg, err := ParseTargets(tc.in, tc.lim)
		if err != nil {
			t.Errorf("ParseTargets(%q): %v", tc.in, err)
			continue
		}
		if tg.Len() != tc.n || tg.String() != tc.want {
			t.Errorf("ParseTargets(%q) = %d addresses %q, want %d %q", tc.in, tg.Len(), tg.String(), tc.n, tc.want)
		}
		n := 0
		for a := range tg.All() {
			if !tg.Contains(a) {
				t.Errorf("%q: All yields %s, Contains denies it", tc.in, a)
			}
			n++
		}
		if n != tc.n {
			t.Errorf("%q: All yields %d addresses, Len %d", tc.in, n, tc.n)
		}
	}
}

// TestParseTargetsRefuses has one case per kind of hostile or mistaken input; each must be refused with a
// clear error naming the entry.
func TestParseTargetsRefuses(t *testing.T) {
	long := strings.Repeat("1", 10000)
	for _, tc := range []struct {
		name string
		in   []string
		lim  Limits
		want error
		text string
	}{
		{"empty", nil, Limits{}, ErrNoTargets, "no targets"},
		{"blank", []string{" , \n"}, Limits{}, ErrNoTargets, "no targets"},
		{"garbage", []string{"hello"}, Limits{}, ErrBadTarget, `"hello"`},
		{"host name", []string{"miner1.local"}, Limits{}, ErrBadTarget, "not resolved"},
		{"octet out of range", []string{"10.0.0.256"}, Limits{}, ErrBadTarget, "10.0.0.256"},
		{"leading zeros", []string{"010.0.0.1"}, Limits{}, ErrBadTarget, "010.0.0.1"},
		{"three octets", []string{"10.0.1"}, Limits{}, ErrBadTarget, "10.0.1"},
		{"NUL byte", []string{"10.0.0.1\x00"}, Limits{}, ErrBadTarget, `\x00`},
		{"overlong", []string{long}, Limits{}, ErrBadTarget, "longer than"},
		{"host:port", []string{"10.0.0.1:4028"}, Limits{}, ErrBadTarget, "ports are set per protocol"},
		{"bad prefix length", []string{"10.0.0.0/33"}, Limits{}, ErrBadTarget, "CIDR"},
		{"CIDR garbage", []string{"10.0.0.0/x"}, Limits{}, ErrBadTarget, "CIDR"},
		{"dangling range", []string{"10.0.0.1-"}, Limits{}, ErrBadTarget, "range end"},
		{"range without start", []string{"-10.0.0.1"}, Limits{}, ErrBadTarget, "range start"},
		{"negative octet", []string{"10.0.0.1--5"}, Limits{}, ErrBadTarget, "last octet"},
		{"octet past 255", []string{"10.0.0.1-300"}, Limits{}, ErrBadTarget, "last octet"},
		{"reversed range", []string{"10.0.0.50-10.0.0.10"}, Limits{}, ErrBadTarget, "before its start"},
		{"reversed short range", []string{"10.0.0.50-10"}, Limits{}, ErrBadTarget, "before its start"},
		{"IPv6", []string{"2001:db8::1"}, Limits{}, ErrIPv6, "IPv6"},
		{"IPv6 loopback", []string{"::1"}, Limits{}, ErrIPv6, "IPv6"},
		{"IPv6 zone", []string{"fe80::1%eth0"}, Limits{}, ErrIPv6, "IPv6"},
		{"IPv6 CIDR", []string{"2001:db8::/64"}, Limits{}, ErrIPv6, "IPv6"},
		{"IPv4-mapped", []string{"::ffff:10.0.0.1"}, Limits{}, ErrIPv6, "write it as 10.0.0.1"},
		{"/0", []string{"0.0.0.0/0"}, Limits{AllowPublic: true}, ErrTooManyAddresses, "/0"},
		{"/8", []string{"10.0.0.0/8"}, Limits{}, ErrTooManyAddresses, "16777216 addresses"},
		{"huge range", []string{"10.0.0.0-10.255.255.255"}, Limits{}, ErrTooManyAddresses, "more than the 65536"},
		{"one past the limit", []string{"10.1.0.0-10.1.255.255", "10.2.0.0"}, Limits{}, ErrTooManyAddresses, "65537"},
		{"custom limit", []string{"10.0.0.0/24"}, Limits{MaxAddresses: 100}, ErrTooManyAddresses, "more than the 100"},
		{"too many entries", []string{strings.Repeat("10.0.0.1,", 5000)}, Limits{}, ErrTooManyAddresses, "target entries"},
		{"public", []string{"8.8.8.8"}, Limits{}, ErrRefusedAddress, "public address (set AllowPublic"},
		{"range leaking into public", []string{"10.255.255.250-11.0.0.3"}, Limits{}, ErrRefusedAddress, "11.0.0.0 is a public"},
		{"link-local", []string{"169.254.10.10"}, Limits{}, ErrRefusedAddress, "link-local"},
		{"multicast", []string{"224.0.0.1"}, Limits{AllowPublic: true}, ErrRefusedAddress, "multicast"},
		{"unspecified", []string{"0.0.0.0"}, Limits{AllowPublic: true}, ErrRefusedAddress, "unspecified"},
		{"broadcast", []string{"255.255.255.255"}, Limits{AllowPublic: true}, ErrRefusedAddress, "broadcast"},
		{"reserved", []string{"240.0.0.1"}, Limits{AllowPublic: true}, ErrRefusedAddress, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTargets(tc.in, tc.lim)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("ParseTargets(%.60q) = %v, want %v mentioning %q", tc.in, err, tc.want, tc.text)
			}
			if len(err.Error()) > 600 {
				t.Fatalf("error is %d bytes long: hostile input must not flood logs", len(err.Error()))
			}
		})
	}
}

func TestParseTargetsReportsEveryBadEntry(t *testing.T) {
	_, err := ParseTargets([]string{"10.0.0.1, nope, 8.8.8.8, ::1, 10.0.0.9-3"}, Limits{})
	for _, want := range []error{ErrBadTarget, ErrRefusedAddress, ErrIPv6} {
		if !errors.Is(err, want) {
			t.Errorf("error %v does not carry %v", err, want)
		}
	}
	for _, s := range []string{`"nope"`, `"8.8.8.8"`, `"::1"`, `"10.0.0.9-3"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

// TestParseTargetsMatchesBruteForce checks random mixes of entries against a plain set of addresses.
func TestParseTargetsMatchesBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		set := map[netip.Addr]bool{}
		var specs []string
		for range 1 + rnd.IntN(6) {
			base := netip.AddrFrom4([4]byte{10, 9, byte(rnd.IntN(3)), byte(rnd.IntN(256))})
			switch rnd.IntN(3) {
			case 0:
				specs = append(specs, base.String())
				set[base] = true
			case 1:
				end := base
				for range rnd.IntN(300) {
					end = end.Next()
				}
				specs = append(specs, base.String()+"-"+end.String())
				for a := base; !end.Less(a); a = a.Next() {
					set[a] = true
				}
			case 2:
				bits := 24 + rnd.IntN(9)
				p := netip.PrefixFrom(base, bits).Masked()
				specs = append(specs, p.String())
				for a := p.Addr(); p.Contains(a); a = a.Next() {
					if bits <= 30 && (a == p.Addr() || !p.Contains(a.Next())) {
						continue
					}
					set[a] = true
				}
			}
		}
		tg, err := ParseTargets(specs, Limits{})
		if err != nil {
			t.Fatalf("iteration %d %q: %v", iter, specs, err)
		}
		got := slices.Collect(tg.All())
		if len(got) != len(set) || tg.Len() != len(set) {
			t.Fatalf("iteration %d %q: %d addresses (Len %d), want %d", iter, specs, len(got), tg.Len(), len(set))
		}
		for i, a := range got {
			if !set[a] || (i > 0 && !got[i-1].Less(a)) {
				t.Fatalf("iteration %d %q: %s unexpected or out of order", iter, specs, a)
			}
		}
		probe := netip.AddrFrom4([4]byte{10, 9, byte(rnd.IntN(3)), byte(rnd.IntN(256))})
		if tg.Contains(probe) != set[probe] {
			t.Fatalf("iteration %d: Contains(%s) = %v", iter, probe, tg.Contains(probe))
		}
	}
}
