package antweb

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// hashFor returns the hash of a digest algorithm name (RFC 7616 §3.2), nil when unknown.
func hashFor(alg string) func() hash.Hash {
	switch strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS")) {
	case "MD5":
		return md5.New
	case "SHA-256":
		return sha256.New
	}
	return nil
}

func hexHash(h func() hash.Hash, parts ...string) string {
	x := h()
	x.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(x.Sum(nil))
}

// nonceState is one issued nonce.
type nonceState struct {
	issued time.Time
	alg    string
	lastNC uint64
}

// AuthStats counts what the miner's digest layer did.
type AuthStats struct {
	Challenges    int    // 401s with fresh challenges (no or wrong credentials, stale nonces)
	Stale         int    // correct responses on an expired or unknown nonce (answered stale=true)
	Failed        int    // wrong user or password, bad realm/uri/qop, replayed nonce count
	Accepted      int    // authenticated requests
	LastAlgorithm string // algorithm of the last accepted request
}

// parseParams parses an auth-param list: key=token or key="quoted string", comma separated.
func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("expected key=value at %q", s)
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quoted value for %s", key)
			}
			out[key], s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			out[key], s = s[:end], s[end:]
		}
	}
}

// challenge writes a 401 with one Digest challenge per configured algorithm, each with a fresh nonce.
func (m *Miner) challenge(w http.ResponseWriter, stale bool) {
	cfg := m.fleet.cfg
	now := cfg.Clock.Now()
	m.mu.Lock()
	m.auth.Challenges++
	for _, alg := range cfg.DigestAlgorithms {
		var b [16]byte
		_, _ = rand.Read(b[:])
		nonce := hex.EncodeToString(b[:])
		m.rememberNonceLocked(nonce, &nonceState{issued: now, alg: alg})
		h := fmt.Sprintf(`Digest realm=%q, qop="auth", algorithm=%s, nonce=%q, opaque=%q`, cfg.Realm, alg, nonce, m.opaque)
		if stale {
			h += ", stale=true"
		}
		w.Header().Add("WWW-Authenticate", h)
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("<html><body><h1>401 Unauthorized</h1></body></html>\n"))
}

func (m *Miner) rememberNonceLocked(nonce string, st *nonceState) {
	if len(m.nonces) >= maxNonces {
		var oldest string
		for n, s := range m.nonces {
			if oldest == "" || s.issued.Before(m.nonces[oldest].issued) {
				oldest = n
			}
		}
		delete(m.nonces, oldest)
	}
	m.nonces[nonce] = st
}

// verify checks a Digest Authorization header. ok: authenticated. stale: the response is right but the
// nonce is expired or unknown. why says what was wrong, for the 401's body and the tests.
func (m *Miner) verify(r *http.Request) (ok, stale bool, why string) {
	cfg := m.fleet.cfg
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return false, false, "no digest credentials"
	}
	p, err := parseParams(rest)
	if err != nil {
		return false, false, err.Error()
	}
	alg := p["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	h := hashFor(alg)
	switch {
	case h == nil:
		return false, false, "unknown algorithm " + alg
	case p["realm"] != cfg.Realm:
		return false, false, "wrong realm"
	case p["uri"] != r.URL.RequestURI():
		return false, false, "uri does not match the request"
	case p["qop"] != "auth":
		return false, false, "qop must be auth"
	case p["opaque"] != m.opaque:
		return false, false, "wrong opaque"
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 32)
	if err != nil || len(p["nc"]) != 8 || p["cnonce"] == "" {
		return false, false, "bad nc or cnonce"
	}
	m.mu.Lock()
	user, pass := m.user, m.pass
	m.mu.Unlock()
	if p["username"] != user {
		return false, false, "unknown user"
	}
	ha1 := hexHash(h, user, cfg.Realm, pass)
	if strings.HasSuffix(strings.ToUpper(alg), "-SESS") {
		ha1 = hexHash(h, ha1, p["nonce"], p["cnonce"])
	}
	ha2 := hexHash(h, r.Method, p["uri"])
	want := hexHash(h, ha1, p["nonce"], p["nc"], p["cnonce"], "auth", ha2)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return false, false, "wrong response (password?)"
	}
	now := cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.nonces[p["nonce"]]
	switch {
	case st == nil || now.Sub(st.issued) >= cfg.NonceTTL:
		delete(m.nonces, p["nonce"])
		return false, true, "stale nonce"
	case !strings.EqualFold(st.alg, alg):
		return false, false, "algorithm differs from the challenge's"
	case nc <= st.lastNC:
		return false, false, "nonce count replayed"
	}
	st.lastNC = nc
	m.auth.LastAlgorithm = alg
	return true, false, ""
}

// requireDigest wraps a CGI with digest authentication.
func (m *Miner) requireDigest(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, stale, why := m.verify(r)
		if !ok {
			m.mu.Lock()
			if stale {
				m.auth.Stale++
			} else if r.Header.Get("Authorization") != "" {
				m.auth.Failed++
			}
			m.mu.Unlock()
			httpsim.NoteOf(r).AuthFailure = why
			m.challenge(w, stale)
			return
		}
		m.mu.Lock()
		m.auth.Accepted++
		m.mu.Unlock()
		httpsim.NoteOf(r).Principal = m.username()
		next(w, r)
	}
}
