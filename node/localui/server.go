package localui

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Request limits.
const (
	maxBodyBytes   = 4 << 20 // a form naming 50000 miners fits
	maxHeaderBytes = 64 << 10
)

// Server is the node's local HTTPS UI. Make it with New, then Start; Stop ends it.
type Server struct {
	cfg      Config
	site     Site
	clock    clock.Clock
	log      *slog.Logger
	m        *metrics
	cert     *Certificate
	creds    *credStore
	sessions *sessionStore
	throttle *throttle
	hashSem  chan struct{}
	pages    *pages
	handler  http.Handler

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	served  chan struct{}
	started bool
	stopped bool
}

// New validates cfg, loads or makes the certificate (first run) and returns a server ready to Start. A
// missing local-admin credential is not an error: the UI runs and its login page says how to set one.
func New(cfg Config, env Env) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if env.Site == nil {
		return nil, fmt.Errorf("local UI: no Site: %w", ErrInvalidConfig)
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	log := env.Logger.With(slog.String("component", "localui"))
	if cfg.NodeID != "" {
		log = log.With(slog.String("node", cfg.NodeID))
	}
	hosts := slices.Clone(cfg.Hostnames)
	if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			hosts = append(hosts, ip.String())
		}
	}
	cert, err := LoadOrCreateCertificate(cfg.Dir, hosts, cfg.CertValidity, env.Clock.Now())
	if err != nil {
		return nil, err
	}
	if cert.Created {
		log.Warn("made a new self-signed certificate for the local UI; check this fingerprint when the browser asks",
			slog.String("fingerprint", cert.Fingerprint), slog.Any("hosts", normalizeHosts(append(slices.Clone(BaseHostnames), hosts...))))
	}
	pg, err := newPages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		site:     env.Site,
		clock:    env.Clock,
		log:      log,
		m:        newMetrics(env.Registerer),
		cert:     cert,
		creds:    newCredStore(cfg.Dir),
		sessions: newSessionStore(cfg.SessionTTL, cfg.SessionIdle, cfg.MaxSessions),
		throttle: newThrottle(cfg.Login),
		hashSem:  make(chan struct{}, cfg.MaxConcurrentHashes),
		pages:    pg,
	}
	if _, err := s.creds.current(); err != nil {
		log.Warn("the local UI has no usable local-admin credential; nobody can log in until one is set",
			slog.Any("error", err))
	}
	s.handler = s.routes()
	return s, nil
}

// Start listens on Config.Addr and serves in the background until Stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return fmt.Errorf("local UI stopped: %w", ErrNotStarted)
	case s.started:
		return ErrAlreadyStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("local UI: listen on %s: %w", s.cfg.Addr, err)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		TLSConfig:         tlsConfig(s.cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		// TLS handshake failures from browsers that have not accepted the certificate yet are routine.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.ln, s.served, s.started = ln, make(chan struct{}), true
	srv, served := s.srv, s.served
	go func() {
		defer close(served)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("local UI stopped serving", slog.Any("error", err))
		}
	}()
	s.log.Info("local UI listening", slog.String("url", s.urlLocked()), slog.String("fingerprint", s.cert.Fingerprint))
	return nil
}

// Stop stops accepting connections, waits for requests in flight (until ctx ends, then closes them) and for
// the serving goroutine. Calling it again, or before Start, does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, served, started := s.srv, s.served, s.started
	s.started, s.stopped = false, true
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-served
	if err != nil {
		return fmt.Errorf("local UI: stop: %w", err)
	}
	return nil
}

// Addr is the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the UI's base URL, ending in "/": https://localhost:PORT/ when listening on every interface.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

func (s *Server) urlLocked() string {
	if s.ln == nil {
		return ""
	}
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "https://" + net.JoinHostPort(host, port) + "/"
}

// Certificate is the UI's self-signed certificate (for clients that pin it).
func (s *Server) Certificate() *Certificate { return s.cert }

// Fingerprint is the SHA-256 fingerprint of the UI's certificate, "AB:CD:…", as browsers show it.
func (s *Server) Fingerprint() string { return s.cert.Fingerprint }

// Handler is the UI's HTTP handler, for serving it on a listener the caller owns (it must be TLS: the
// cookies are Secure).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.getLogin)
	mux.HandleFunc("POST /login", s.postLogin)
	mux.Handle("POST /logout", s.page(s.postLogout))
	mux.Handle("GET /{$}", s.page(s.getMiners))
	mux.Handle("GET /miners/{id}", s.page(s.getMiner))
	mux.Handle("GET /commands", s.page(s.getCommands))
	mux.Handle("POST /commands", s.page(s.postCommand))
	mux.Handle("GET /curtailment", s.page(s.getCurtailment))
	mux.Handle("POST /curtailment", s.page(s.postCurtailment))
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	mux.HandleFunc("POST /api/local/login", s.apiLogin)
	mux.Handle("GET /api/local/session", s.api(s.apiSession))
	mux.Handle("POST /api/local/logout", s.api(s.apiLogout))
	mux.Handle("GET /api/local/miners", s.api(s.apiMiners))
	mux.Handle("GET /api/local/miners/{id}", s.api(s.apiMiner))
	mux.Handle("GET /api/local/link", s.api(s.apiLink))
	mux.Handle("GET /api/local/commands", s.api(s.apiCommands))
	mux.Handle("POST /api/local/commands", s.api(s.apiSubmit))
	mux.Handle("POST /api/local/curtailment", s.api(s.apiCurtailment))
	mux.Handle("GET /api/local/curtail-event", s.api(s.apiCurtailState))
	mux.Handle("POST /api/local/curtail-event", s.api(s.apiCurtailEvent))
	mux.HandleFunc("/api/local/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such endpoint")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "No such page.")
	})
	return s.guard(mux)
}

// isAPI reports whether a request is for the JSON API (errors answered in JSON).
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// cloudCredentialParams are query parameters that carry a cloud credential in some clients.
var cloudCredentialParams = []string{"api_key", "apikey", "access_token", "token"}

// guard is applied to every request: security headers, a body bound, refusal of cloud credentials, and
// same-origin enforcement on every write.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on form posts, which
		// the origin check below (rightly) refuses.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		// No Strict-Transport-Security: with a self-signed certificate, HSTS would stop operators from
		// accepting it in the browser at all.
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)

		if reason := cloudCredential(r); reason != "" {
			s.m.refuse("cloud_credential")
			s.log.Warn("refused a request bearing a cloud credential; the local UI takes only its local-admin session",
				slog.String("client", r.RemoteAddr), slog.String("path", r.URL.Path), slog.String("carrier", reason))
			msg := "Cloud credentials (API keys, bearer tokens) are not accepted by the node's local UI. " +
				"Log in with the local-admin account."
			if isAPI(r) {
				writeJSONError(w, http.StatusUnauthorized, msg)
			} else {
				s.renderError(w, r, http.StatusUnauthorized, msg)
			}
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
			if reason := crossOrigin(r); reason != "" {
				s.m.refuse("origin")
				s.log.Warn("refused a cross-origin write", slog.String("client", r.RemoteAddr),
					slog.String("path", r.URL.Path), slog.String("reason", reason))
				s.forbid(w, r, "This request came from another site and was refused.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cloudCredential names where r carries something that looks like a cloud credential ("" if nowhere).
func cloudCredential(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return "authorization header"
	}
	if r.Header.Get("X-Api-Key") != "" {
		return "x-api-key header"
	}
	q := r.URL.Query()
	for _, p := range cloudCredentialParams {
		if q.Has(p) {
			return "query parameter " + p
		}
	}
	return ""
}

// crossOrigin explains why a write is cross-origin ("" if it is not, or the browser did not say). The CSRF
// token is the real protection; this refuses what a browser already tells us is cross-site.
func crossOrigin(r *http.Request) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return "Sec-Fetch-Site: " + site
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, r.Host) {
			return "Origin " + o + " is not https://" + r.Host
		}
	}
	return ""
}

func (s *Server) forbid(w http.ResponseWriter, r *http.Request, msg string) {
	if isAPI(r) {
		writeJSONError(w, http.StatusForbidden, msg)
	} else {
		s.renderError(w, r, http.StatusForbidden, msg)
	}
}

// sessionOf returns r's live session, or nil. A session made under a replaced credential is ended.
func (s *Server) sessionOf(r *http.Request) (string, *session) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return "", nil
	}
	sess, ok := s.sessions.get(c.Value, s.clock.Now())
	if !ok {
		return "", nil
	}
	cred, err := s.creds.current()
	if err != nil || cred.stamp != sess.credStamp {
		s.sessions.delete(c.Value)
		return "", nil
	}
	return c.Value, sess
}

func csrfOK(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// page wraps a page handler: no session → the login page (back here after login for a GET); a POST needs
// the session's CSRF token in the form.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sess := s.sessionOf(r)
		if sess == nil {
			s.m.refuse("no_session")
			target := "/login"
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				s.renderError(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			if !csrfOK(r.PostForm.Get(CSRFField), sess.csrf) {
				s.m.refuse("csrf")
				s.log.Warn("refused a form without a valid CSRF token", slog.String("client", r.RemoteAddr),
					slog.String("path", r.URL.Path))
				s.renderError(w, r, http.StatusForbidden,
					"This form is out of date or did not come from this page (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		h(w, r, sess)
	})
}

// api wraps a JSON handler: no session → 401; a POST needs JSON and the session's CSRF token in the
// X-CSRF-Token header.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sess := s.sessionOf(r)
		if sess == nil {
			s.m.refuse("no_session")
			writeJSONError(w, http.StatusUnauthorized, "not logged in (POST /api/local/login), or the session expired")
			return
		}
		if r.Method == http.MethodPost {
			if !csrfOK(r.Header.Get(CSRFHeader), sess.csrf) {
				s.m.refuse("csrf")
				s.log.Warn("refused an API write without a valid CSRF token", slog.String("client", r.RemoteAddr),
					slog.String("path", r.URL.Path))
				writeJSONError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header (GET /api/local/session gives it)")
				return
			}
			if !isJSON(r) {
				writeJSONError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
				return
			}
		}
		h(w, r, sess)
	})
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

func (s *Server) siteCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.SiteTimeout)
}

func (s *Server) setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.cfg.SessionTTL / time.Second)})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// localPath returns p if it is a path on this server ("/..."), else "/": a login's "next" and a form's
// "return_to" can never send the browser elsewhere.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}

// withQuery sets one query parameter on a local path.
func withQuery(p, key, value string) string {
	u, err := url.Parse(localPath(p))
	if err != nil {
		return "/"
	}
	q := u.Query()
	q.Del("submitted")
	q.Del("error")
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return n
}
