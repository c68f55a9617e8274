package automation

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TrustedPools is the org's list of allowed pool URL patterns, from the signed site policy. A pattern is
//
//	scheme://host:port
//
// where scheme is matched exactly (stratum+tcp and stratum+ssl are different: a pattern for one never
// allows the other), host is an exact DNS name, an IPv4 address, a bracketed IPv6 address, or "*.suffix"
// (any name ending in ".suffix", at any depth, never the suffix itself; the suffix needs two labels), and port
// is a number or "*". Names are compared case-insensitively, with one trailing dot (the FQDN form) ignored.
//
// A URL is allowed only if it parses strictly and matches a pattern. Refused outright, whatever the patterns:
// userinfo ("user@host": a classic way to show one host and connect to another), a path, query or fragment,
// percent-encoding, backslashes, spaces, control or non-ASCII characters (an IDN host must be written in
// punycode, xn--…, and then matches only a pattern written the same way, so a homograph of a trusted name never
// matches), a missing or zero-padded port, and numeric hosts in unusual forms ("127.1", "010.0.0.1").
//
// An empty list is not enforced: Allows says yes, with a reason saying so.
type TrustedPools struct {
	patterns []poolPattern
}

type poolPattern struct {
	raw      string
	scheme   string
	host     string // normalised; for a wildcard, the suffix
	wildcard bool
	ip       bool
	port     int // 0: any
}

type poolURL struct {
	scheme string
	host   string
	ip     bool
	port   int
}

// NewTrustedPools compiles patterns; an unusable pattern is an error wrapping ErrBadPoolPattern.
func NewTrustedPools(patterns ...string) (TrustedPools, error) {
	var t TrustedPools
	for _, raw := range patterns {
		p, err := parsePattern(raw)
		if err != nil {
			return TrustedPools{}, err
		}
		t.patterns = append(t.patterns, p)
	}
	return t, nil
}

// Patterns returns the patterns as written.
func (t TrustedPools) Patterns() []string {
	out := make([]string, len(t.patterns))
	for i, p := range t.patterns {
		out[i] = p.raw
	}
	return out
}

// Enforced reports whether the list has any pattern.
func (t TrustedPools) Enforced() bool { return len(t.patterns) > 0 }

// MarshalJSON writes the patterns as a JSON array of strings.
func (t TrustedPools) MarshalJSON() ([]byte, error) { return json.Marshal(t.Patterns()) }

// UnmarshalJSON reads and compiles a JSON array of pattern strings.
func (t *TrustedPools) UnmarshalJSON(b []byte) error {
	var raw []string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("trusted pools: want an array of \"scheme://host:port\" strings: %w", err)
	}
	v, err := NewTrustedPools(raw...)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Allows reports whether the pool URL is allowed, and why (the matching pattern, or what is wrong).
func (t TrustedPools) Allows(rawURL string) (bool, string) {
	if !t.Enforced() {
		return true, "no trusted pools listed in the site policy: not enforced"
	}
	u, err := parsePoolURL(rawURL)
	if err != nil {
		return false, fmt.Sprintf("pool URL %q refused: %v", rawURL, err)
	}
	for _, p := range t.patterns {
		if p.matches(u) {
			return true, fmt.Sprintf("pool URL %q matches trusted pool %q", rawURL, p.raw)
		}
	}
	return false, fmt.Sprintf("pool URL %q is not in the site's trusted pools (%s://%s:%d matches none of %d patterns)",
		rawURL, u.scheme, u.host, u.port, len(t.patterns))
}

// AllowsPools checks every pool of a pool change (ACTION_UPDATE_POOLS): all must be allowed.
func (t TrustedPools) AllowsPools(pools []*pb.Pool) (bool, string) {
	if !t.Enforced() {
		return true, "no trusted pools listed in the site policy: not enforced"
	}
	for i, p := range pools {
		if ok, why := t.Allows(p.GetUrl()); !ok {
			return false, fmt.Sprintf("pool %d: %s", i+1, why)
		}
	}
	return true, fmt.Sprintf("all %d pools are trusted", len(pools))
}

func (p poolPattern) matches(u poolURL) bool {
	if p.scheme != u.scheme || (p.port != 0 && p.port != u.port) {
		return false
	}
	switch {
	case p.ip || u.ip:
		return p.ip && u.ip && p.host == u.host
	case p.wildcard:
		return strings.HasSuffix(u.host, "."+p.host)
	}
	return p.host == u.host
}

func parsePattern(raw string) (poolPattern, error) {
	u, wildcard, anyPort, err := parse(raw, true)
	if err != nil {
		return poolPattern{}, fmt.Errorf("pattern %q: %v: %w", raw, err, ErrBadPoolPattern)
	}
	if wildcard && strings.Count(u.host, ".") < 1 {
		return poolPattern{}, fmt.Errorf("pattern %q: wildcard over a single label is too broad: %w", raw, ErrBadPoolPattern)
	}
	p := poolPattern{raw: raw, scheme: u.scheme, host: u.host, wildcard: wildcard, ip: u.ip, port: u.port}
	if anyPort {
		p.port = 0
	}
	return p, nil
}

func parsePoolURL(raw string) (poolURL, error) {
	u, _, _, err := parse(raw, false)
	return u, err
}

// parse reads scheme://host:port strictly. In a pattern, host may start with "*." and port may be "*".
func parse(raw string, pattern bool) (u poolURL, wildcard, anyPort bool, err error) {
	fail := func(format string, a ...any) (poolURL, bool, bool, error) {
		return poolURL{}, false, false, fmt.Errorf(format, a...)
	}
	switch {
	case raw == "":
		return fail("empty")
	case len(raw) > 512:
		return fail("longer than 512 bytes")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x21 || c > 0x7e {
			return fail("byte %d is a space, control or non-ASCII character (write IDN hosts in punycode, xn--…)", i)
		}
	}
	if strings.ContainsRune(raw, '\\') {
		return fail("contains a backslash")
	}
	i := strings.Index(raw, "://")
	if i <= 0 {
		return fail("no scheme (want scheme://host:port)")
	}
	u.scheme = strings.ToLower(raw[:i])
	for j, c := range u.scheme {
		if !(c >= 'a' && c <= 'z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return fail("scheme %q is not a URL scheme", raw[:i])
		}
	}
	rest := raw[i+3:]
	switch {
	case strings.ContainsRune(rest, '@'):
		return fail("carries userinfo ('@'); the worker name belongs in the pool's user field")
	case strings.ContainsAny(rest, "?#"):
		return fail("has a query or fragment")
	case strings.ContainsRune(rest, '%'):
		return fail("contains percent-encoding")
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsRune(rest, '/') {
		return fail("has a path")
	}
	var host, port string
	if strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return fail("unterminated IPv6 literal")
		}
		host, port = rest[1:j], rest[j+1:]
		if !strings.HasPrefix(port, ":") {
			return fail("no port")
		}
		port = port[1:]
		a, perr := netip.ParseAddr(host)
		if perr != nil || !a.Is6() || a.Zone() != "" || a.Is4In6() {
			return fail("bad IPv6 literal %q", host)
		}
		u.host, u.ip = a.String(), true
	} else {
		j := strings.LastIndexByte(rest, ':')
		if j < 0 {
			return fail("no port")
		}
		host, port = rest[:j], rest[j+1:]
		if strings.ContainsRune(host, ':') {
			return fail("host %q has a ':' (IPv6 literals go in brackets)", host)
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		if pattern && strings.HasPrefix(host, "*.") {
			wildcard, host = true, host[2:]
		}
		if a, perr := netip.ParseAddr(host); perr == nil && a.Is4() {
			if wildcard {
				return fail("wildcard on an IP address")
			}
			u.host, u.ip = a.String(), true
		} else if herr := checkHostname(host); herr != nil {
			return fail("%v", herr)
		} else {
			u.host = host
		}
	}
	if pattern && port == "*" {
		return u, wildcard, true, nil
	}
	if port == "" || port[0] == '0' || len(port) > 5 {
		return fail("port %q is not a number from 1 to 65535 without leading zeros", port)
	}
	n, perr := strconv.Atoi(port)
	if perr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fail("port %q is not a number from 1 to 65535 without leading zeros", port)
	}
	u.port = n
	return u, wildcard, false, nil
}

// checkHostname accepts lower-case LDH names (RFC 1123) whose last label is not numeric.
func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host longer than 253 bytes")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host %q has an empty or over-long label", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q has a label starting or ending with '-'", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q has a character %q that is not a letter, digit or '-'", h, c)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("host %q looks like an IP address in an unusual form", h)
	}
	return nil
}

// PoolGuard holds the installed policy's trusted pools for the CommandGate to consult synchronously. The
// AutomationActor updates it on every install; any goroutine may read it.
type PoolGuard struct {
	cur atomic.Pointer[guarded]
}

type guarded struct {
	version uint64
	pools   TrustedPools
}

// NewPoolGuard returns a guard with no policy installed.
func NewPoolGuard() *PoolGuard { return &PoolGuard{} }

func (g *PoolGuard) set(version uint64, t TrustedPools) {
	if g != nil {
		g.cur.Store(&guarded{version: version, pools: t})
	}
}

// Allows reports whether a pool URL is allowed by the installed policy. With no policy installed nothing is
// enforced.
func (g *PoolGuard) Allows(rawURL string) (bool, string) {
	c := g.load()
	if c == nil {
		return true, "no site policy installed: trusted pools not enforced"
	}
	ok, why := c.pools.Allows(rawURL)
	return ok, fmt.Sprintf("site policy v%d: %s", c.version, why)
}

// AllowsPools checks every pool of a pool change against the installed policy.
func (g *PoolGuard) AllowsPools(pools []*pb.Pool) (bool, string) {
	c := g.load()
	if c == nil {
		return true, "no site policy installed: trusted pools not enforced"
	}
	ok, why := c.pools.AllowsPools(pools)
	return ok, fmt.Sprintf("site policy v%d: %s", c.version, why)
}

func (g *PoolGuard) load() *guarded {
	if g == nil {
		return nil
	}
	return g.cur.Load()
}
