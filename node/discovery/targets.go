package discovery

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Limits bound what ParseTargets accepts.
type Limits struct {
	// MaxAddresses is the most distinct addresses one scan may cover. Default 65,536 (a /16).
	MaxAddresses int
	// AllowPublic admits public (globally routable) and link-local (169.254.0.0/16) addresses. Unspecified
	// (0.0.0.0/8), multicast (224.0.0.0/4), reserved (240.0.0.0/4) and the broadcast address are refused
	// whatever it says: no miner lives there.
	AllowPublic bool
}

// Targets is a validated, de-duplicated set of IPv4 addresses, kept as sorted, merged ranges.
type Targets struct {
	spans []span
	n     int
}

// span is the closed range [lo, hi] of IPv4 addresses as integers.
type span struct{ lo, hi uint32 }

func (s span) size() uint64 { return uint64(s.hi) - uint64(s.lo) + 1 }

const (
	// maxTargetSpecs bounds how many target entries one scan may list (after splitting on commas and spaces).
	maxTargetSpecs = 4096
	// maxSpecLen bounds one entry: "255.255.255.255-255.255.255.255" is 31 bytes.
	maxSpecLen = 64
)

// ParseTargets reads operator-given targets: single addresses (10.0.0.5), CIDR blocks (10.0.0.0/24), full
// ranges (10.0.0.10-10.0.0.50) and last-octet ranges (10.0.0.10-50). Each string may hold several entries
// separated by commas or white space. Overlaps and duplicates collapse. A CIDR block of /30 or wider skips
// its network and broadcast addresses (not in 127.0.0.0/8, where they are ordinary loopback addresses);
// ranges and single addresses are taken as written.
//
// Every malformed or refused entry is reported, each error wrapping ErrBadTarget, ErrIPv6, ErrRefusedAddress
// or ErrTooManyAddresses and naming the entry; the union must not exceed lim.MaxAddresses.
func ParseTargets(specs []string, lim Limits) (*Targets, error) {
	if lim.MaxAddresses <= 0 {
		lim.MaxAddresses = DefaultMaxAddresses
	}
	var entries []string
	for _, s := range specs {
		entries = append(entries, strings.FieldsFunc(s, func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})...)
		if len(entries) > maxTargetSpecs {
			return nil, fmt.Errorf("more than %d target entries: %w", maxTargetSpecs, ErrTooManyAddresses)
		}
	}
	if len(entries) == 0 {
		return nil, ErrNoTargets
	}
	var errs []error
	spans := make([]span, 0, len(entries))
	for _, e := range entries {
		sp, err := parseEntry(e, lim)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", quoteEntry(e), err))
			continue
		}
		spans = append(spans, sp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t := &Targets{spans: mergeSpans(spans)}
	var total uint64
	for _, s := range t.spans {
		total += s.size()
	}
	if total > uint64(lim.MaxAddresses) {
		return nil, fmt.Errorf("targets cover %d addresses, more than the %d allowed per scan: %w", total, lim.MaxAddresses, ErrTooManyAddresses)
	}
	t.n = int(total)
	return t, nil
}

// quoteEntry quotes an entry for an error message, shortened so hostile input cannot flood a log.
func quoteEntry(e string) string {
	if len(e) > maxSpecLen {
		e = e[:maxSpecLen] + "…"
	}
	return strconv.Quote(e)
}

// parseEntry reads one entry into a span and checks it against the limits.
func parseEntry(e string, lim Limits) (span, error) {
	if len(e) > maxSpecLen {
		return span{}, fmt.Errorf("longer than %d characters: %w", maxSpecLen, ErrBadTarget)
	}
	var sp span
	switch {
	case strings.Contains(e, "/"):
		p, err := netip.ParsePrefix(e)
		if err != nil {
			if isIPv6ish(e) {
				return span{}, ErrIPv6
			}
			return span{}, fmt.Errorf("not a CIDR block (want e.g. 10.0.0.0/24): %w", ErrBadTarget)
		}
		if !p.Addr().Is4() || p.Addr().Is4In6() {
			return span{}, ErrIPv6
		}
		if p.Bits() == 0 {
			return span{}, fmt.Errorf("/0 would scan the whole Internet: %w", ErrTooManyAddresses)
		}
		p = p.Masked()
		lo := u32(p.Addr())
		hi := lo | (1<<(32-p.Bits()) - 1)
		if size := uint64(hi) - uint64(lo) + 1; size > uint64(lim.MaxAddresses) {
			return span{}, fmt.Errorf("/%d is %d addresses, more than the %d allowed per scan: %w", p.Bits(), size, lim.MaxAddresses, ErrTooManyAddresses)
		}
		if p.Bits() <= 30 && lo>>24 != 127 {
			lo, hi = lo+1, hi-1 // network and broadcast addresses
		}
		sp = span{lo, hi}
	case strings.Contains(e, "-"):
		first, last, _ := strings.Cut(e, "-")
		a, err := parseAddr(first)
		if err != nil {
			return span{}, fmt.Errorf("range start: %w", err)
		}
		var b netip.Addr
		if n, err := strconv.Atoi(last); err == nil && !strings.Contains(last, ".") {
			if n < 0 || n > 255 || last != strconv.Itoa(n) {
				return span{}, fmt.Errorf("range end %q is not a last octet 0-255: %w", last, ErrBadTarget)
			}
			o := a.As4()
			o[3] = byte(n)
			b = netip.AddrFrom4(o)
		} else if b, err = parseAddr(last); err != nil {
			return span{}, fmt.Errorf("range end: %w", err)
		}
		if b.Less(a) {
			return span{}, fmt.Errorf("range end %s is before its start %s: %w", b, a, ErrBadTarget)
		}
		sp = span{u32(a), u32(b)}
		if size := sp.size(); size > uint64(lim.MaxAddresses) {
			return span{}, fmt.Errorf("range is %d addresses, more than the %d allowed per scan: %w", size, lim.MaxAddresses, ErrTooManyAddresses)
		}
	default:
		a, err := parseAddr(e)
		if err != nil {
			return span{}, err
		}
		sp = span{u32(a), u32(a)}
	}
	if err := checkPolicy(sp, lim.AllowPublic); err != nil {
		return span{}, err
	}
	return sp, nil
}

// parseAddr reads one IPv4 address, naming IPv6, host:port and host names as such.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil && a.Is4():
		return a, nil
	case err == nil && a.Is4In6():
		return netip.Addr{}, fmt.Errorf("IPv4-mapped IPv6 %s: write it as %s: %w", s, a.Unmap(), ErrIPv6)
	case err == nil || isIPv6ish(s):
		return netip.Addr{}, ErrIPv6
	}
	if ap, perr := netip.ParseAddrPort(s); perr == nil && ap.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("ports are set per protocol for the whole scan, not per target (drop :%d): %w", ap.Port(), ErrBadTarget)
	}
	return netip.Addr{}, fmt.Errorf("not an IPv4 address, CIDR block or range (host names are not resolved): %w", ErrBadTarget)
}

// isIPv6ish tells an IPv6 literal (with or without zone or prefix) from other garbage.
func isIPv6ish(s string) bool {
	return strings.Count(s, ":") >= 2
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrOf(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// addrClass is one block of the IPv4 space with its scanning policy.
type addrClass struct {
	lo, hi uint32
	name   string
	policy policy
}

type policy uint8

const (
	allowed       policy = iota // private and loopback
	needsPublic                 // refused unless AllowPublic
	alwaysRefused               // never a miner
)

func block(cidr string, name string, p policy) addrClass {
	pf := netip.MustParsePrefix(cidr)
	lo := u32(pf.Addr())
	return addrClass{lo: lo, hi: lo | (1<<(32-pf.Bits()) - 1), name: name, policy: p}
}

// classes are the special blocks in address order; the gaps between them are public.
var classes = []addrClass{
	block("0.0.0.0/8", "unspecified (0.0.0.0/8)", alwaysRefused),
	block("10.0.0.0/8", "private", allowed),
	block("127.0.0.0/8", "loopback", allowed),
	block("169.254.0.0/16", "link-local", needsPublic),
	block("172.16.0.0/12", "private", allowed),
	block("192.168.0.0/16", "private", allowed),
	block("224.0.0.0/4", "multicast", alwaysRefused),
	{lo: 0xF0000000, hi: 0xFFFFFFFE, name: "reserved (240.0.0.0/4)", policy: alwaysRefused},
	{lo: 0xFFFFFFFF, hi: 0xFFFFFFFF, name: "broadcast", policy: alwaysRefused},
}

// classify returns the class holding v and the last address of the run of that class from v.
func classify(v uint32) (name string, p policy, runEnd uint32) {
	for _, c := range classes {
		if v < c.lo {
			return "public", needsPublic, c.lo - 1
		}
		if v <= c.hi {
			return c.name, c.policy, c.hi
		}
	}
	return "public", needsPublic, 0xFFFFFFFF // unreachable: the last class ends the space
}

// checkPolicy refuses a span holding any address its policy forbids, naming the first such address.
func checkPolicy(s span, allowPublic bool) error {
	for v := s.lo; ; {
		name, p, end := classify(v)
		refused := p == alwaysRefused || (p == needsPublic && !allowPublic)
		if refused {
			hint := ""
			if p == needsPublic {
				hint = " (set AllowPublic to scan it)"
			}
			return fmt.Errorf("%s is a %s address%s: %w", addrOf(v), name, hint, ErrRefusedAddress)
		}
		if end >= s.hi {
			return nil
		}
		v = end + 1
	}
}

// mergeSpans sorts spans and merges overlapping or adjacent ones.
func mergeSpans(in []span) []span {
	slices.SortFunc(in, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out := in[:0]
	for _, s := range in {
		if n := len(out); n > 0 && uint64(s.lo) <= uint64(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// Len is the number of distinct addresses.
func (t *Targets) Len() int { return t.n }

// All yields every address in ascending order.
func (t *Targets) All() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for _, s := range t.spans {
			for v := uint64(s.lo); v <= uint64(s.hi); v++ {
				if !yield(addrOf(uint32(v))) {
					return
				}
			}
		}
	}
}

// Contains reports whether a is one of the addresses.
func (t *Targets) Contains(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	v := u32(a)
	i, _ := slices.BinarySearchFunc(t.spans, v, func(s span, v uint32) int {
		switch {
		case s.hi < v:
			return -1
		case s.lo > v:
			return 1
		}
		return 0
	})
	return i < len(t.spans) && t.spans[i].lo <= v && v <= t.spans[i].hi
}

// String lists the merged ranges, "10.0.0.1-10.0.0.254, 10.0.1.7".
func (t *Targets) String() string {
	var b strings.Builder
	for i, s := range t.spans {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(addrOf(s.lo).String())
		if s.hi != s.lo {
			b.WriteByte('-')
			b.WriteString(addrOf(s.hi).String())
		}
	}
	return b.String()
}
