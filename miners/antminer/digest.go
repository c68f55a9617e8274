package antminer

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// challenge is one parsed "WWW-Authenticate: Digest ..." challenge.
type challenge struct {
	realm, nonce, opaque string
	alg                  string // as the server spelt it; "" means MD5
	qop                  string // "auth", or "" for RFC 2069
	userhash             bool
	stale                bool
}

func (c *challenge) hash() func() hash.Hash { return hashFor(c.alg) }

func (c *challenge) sess() bool { return strings.HasSuffix(strings.ToUpper(c.alg), "-SESS") }

func hashFor(alg string) func() hash.Hash {
	switch strings.TrimSuffix(strings.ToUpper(alg), "-SESS") {
	case "", "MD5":
		return md5.New
	case "SHA-256":
		return sha256.New
	}
	return nil
}

func strength(alg string) int {
	if strings.HasPrefix(strings.ToUpper(alg), "SHA-256") {
		return 2
	}
	return 1
}

// parseChallenges reads every challenge in the WWW-Authenticate values (several may share one value) and
// returns the Digest ones.
func parseChallenges(values []string) ([]challenge, []string) {
	var out []challenge
	var schemes []string
	for _, v := range values {
		var cur map[string]string
		flush := func() {
			if cur == nil {
				return
			}
			c := challenge{realm: cur["realm"], nonce: cur["nonce"], opaque: cur["opaque"], alg: cur["algorithm"],
				userhash: strings.EqualFold(cur["userhash"], "true"), stale: strings.EqualFold(cur["stale"], "true")}
			if q, ok := cur["qop"]; ok {
				c.qop = "-" // offered, but not auth
				for _, o := range strings.Split(q, ",") {
					if strings.EqualFold(strings.TrimSpace(o), "auth") {
						c.qop = "auth"
					}
				}
			}
			out = append(out, c)
			cur = nil
		}
		s := v
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			end := strings.IndexAny(s, " \t,=")
			if end < 0 {
				end = len(s)
			}
			tok := s[:end]
			rest := strings.TrimLeft(s[end:], " \t")
			if strings.HasPrefix(rest, "=") && tok != "" {
				// key=value inside the current challenge
				val, after, ok := paramValue(strings.TrimLeft(rest[1:], " \t"))
				if !ok {
					break
				}
				if cur != nil {
					cur[strings.ToLower(tok)] = val
				}
				s = after
				continue
			}
			// a new challenge's scheme
			flush()
			schemes = append(schemes, tok)
			if strings.EqualFold(tok, "Digest") {
				cur = map[string]string{}
			}
			s = rest
		}
		flush()
	}
	return out, schemes
}

// paramValue reads a token or a quoted string.
func paramValue(s string) (val, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, ", \t")
		if end < 0 {
			end = len(s)
		}
		return s[:end], s[end:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// pick returns the strongest usable challenge: a known algorithm, and qop auth or no qop at all.
func pick(cs []challenge) (challenge, bool) {
	best, found := challenge{}, false
	for _, c := range cs {
		if hashFor(c.alg) == nil || c.qop == "-" || c.nonce == "" {
			continue
		}
		if !found || strength(c.alg) > strength(best.alg) {
			best, found = c, true
		}
	}
	return best, found
}

func hexHash(h func() hash.Hash, parts ...string) string {
	x := h()
	x.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(x.Sum(nil))
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// digest is the client state: the current challenge and its nonce count.
type digest struct {
	user, pass string
	ch         *challenge
	nc         uint32
}

// authorization computes the Authorization header for one request, or "" before any challenge.
func (d *digest) authorization(method, uri string) string {
	c := d.ch
	if c == nil {
		return ""
	}
	d.nc++
	var cb [16]byte
	_, _ = rand.Read(cb[:])
	cnonce := hex.EncodeToString(cb[:])
	nc := fmt.Sprintf("%08x", d.nc)
	resp := c.response(d.user, d.pass, method, uri, nc, cnonce)
	h := c.hash()
	user := d.user
	if c.userhash {
		user = hexHash(h, d.user, c.realm)
	}
	var b strings.Builder
	b.WriteString("Digest username=" + quote(user) + ", realm=" + quote(c.realm) + ", nonce=" + quote(c.nonce) +
		", uri=" + quote(uri) + ", response=" + quote(resp))
	if c.alg != "" {
		b.WriteString(", algorithm=" + c.alg)
	}
	if c.qop == "auth" {
		b.WriteString(", qop=auth, nc=" + nc + ", cnonce=" + quote(cnonce))
	}
	if c.opaque != "" {
		b.WriteString(", opaque=" + quote(c.opaque))
	}
	if c.userhash {
		b.WriteString(", userhash=true")
	}
	return b.String()
}

// response computes the request-digest (RFC 7616 §3.4.1; RFC 2069 when the challenge has no qop).
func (c *challenge) response(user, pass, method, uri, nc, cnonce string) string {
	h := c.hash()
	ha1 := hexHash(h, user, c.realm, pass)
	if c.sess() {
		ha1 = hexHash(h, ha1, c.nonce, cnonce)
	}
	ha2 := hexHash(h, method, uri)
	if c.qop == "auth" {
		return hexHash(h, ha1, c.nonce, nc, cnonce, "auth", ha2)
	}
	return hexHash(h, ha1, c.nonce, ha2)
}

// adopt makes c the current challenge with a fresh nonce count.
func (d *digest) adopt(c challenge) {
	d.ch, d.nc = &c, 0
}

// nextNonce applies an Authentication-Info nextnonce, if any.
func (d *digest) nextNonce(authInfo string) {
	if d.ch == nil || authInfo == "" {
		return
	}
	for _, part := range strings.Split(authInfo, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "nextnonce") {
			if val, _, ok := paramValue(strings.TrimSpace(v)); ok && val != "" && val != d.ch.nonce {
				c := *d.ch
				c.nonce = val
				d.adopt(c)
			}
		}
	}
}
