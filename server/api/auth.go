package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/server/users"
)

// SessionCookie is the browser session cookie: HttpOnly, SameSite=Strict, Secure over TLS.
const SessionCookie = "hashfleet_session"

// CSRFHeader carries the session's CSRF token on every write made with the session cookie.
const CSRFHeader = "X-CSRF-Token"

// Who may call what. A viewer reads; an operator also writes to miners, scans and pairs; an admin also
// manages users, API keys, node enrollment and command keys. A route's need is decided from its pattern, so
// routes added later are covered: reads need a viewer, writes an operator, and the admin routes below an
// admin.
var adminRoutes = []string{
	"POST /api/v1/enrollment-codes",
	"POST /api/v1/nodes/{id}/confirm",
	"POST /api/v1/nodes/{id}/inject",
	"POST /api/v1/nodes/{id}/revoke",
	"POST /api/v1/devices/{id}/transfer",
	"POST /api/v1/credentials/rotate",
	"POST /api/v1/keys/rotate",
	"POST /api/v1/keys/{id}/revoke",
}

// adminPrefixes: every method under these needs an admin.
var adminPrefixes = []string{"/api/v1/users", "/api/v1/api-keys"}

// requiredRole is the role a request to pattern ("METHOD /path") needs.
func requiredRole(pattern string) users.Role {
	method, path, found := strings.Cut(pattern, " ")
	if !found { // the catch-all (404) or no route (405): nothing to protect
		return users.Viewer
	}
	for _, p := range adminPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return users.Admin
		}
	}
	for _, r := range adminRoutes {
		if r == pattern {
			return users.Admin
		}
	}
	switch method {
	case http.MethodGet, http.MethodHead, "":
		return users.Viewer
	}
	if pattern == "DELETE /api/v1/session" {
		return users.Viewer
	}
	return users.Operator
}

type principalKey struct{}

// PrincipalFrom is the authenticated caller of a request (zero outside the API).
func PrincipalFrom(ctx context.Context) users.Principal {
	p, _ := ctx.Value(principalKey{}).(users.Principal)
	return p
}

// actorName is who a command is recorded as issued by.
func actorName(r *http.Request) string {
	if p := PrincipalFrom(r.Context()); p.Name != "" {
		return p.Name
	}
	return "user:admin"
}

// serveAuthenticated authenticates the caller (admin token, API key or session cookie), checks the role
// the route needs and, for cookie sessions, the CSRF token and Origin of every write, then serves.
func (a *API) serveAuthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/session" {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "forbidden", "cross-origin sign-in refused")
			return
		}
		a.mux.ServeHTTP(w, r) // the login itself
		return
	}
	p, err := a.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hashfleet"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	_, pattern := a.mux.Handler(r)
	if need := requiredRole(pattern); !p.Role.Allows(need) {
		a.log.Info("api: refused for role", slog.String("principal", p.Name), slog.String("role", p.Role.String()),
			slog.String("route", pattern))
		writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not %s (needs %s)", p.Role, pattern, need))
		return
	}
	if p.Session && !safeMethod(r.Method) {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "forbidden", "cross-origin write refused")
			return
		}
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
			writeError(w, http.StatusForbidden, "csrf", "missing or wrong "+CSRFHeader+" header")
			return
		}
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin refuses a request whose Origin (sent by browsers on writes) names another host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

var (
	errNoCredentials = errors.New("sign in, or send Authorization: Bearer <admin token or API key>")
	errBadBearer     = errors.New("wrong bearer token or API key")
	errBadSession    = errors.New("session expired or unknown: sign in again")
)

// authenticate reads the bearer token (the admin token, or an API key) or else the session cookie.
func (a *API) authenticate(r *http.Request) (users.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return users.Principal{}, errBadBearer
		}
		tok = strings.TrimSpace(tok)
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], a.token[:]) == 1 {
			return users.Principal{Name: "user:admin", Role: users.Admin}, nil
		}
		if a.cfg.Users != nil {
			if p, err := a.cfg.Users.APIKey(tok); err == nil {
				return p, nil
			}
		}
		return users.Principal{}, errBadBearer
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || a.cfg.Users == nil {
		return users.Principal{}, errNoCredentials
	}
	p, err := a.cfg.Users.Session(c.Value)
	if err != nil {
		return users.Principal{}, errBadSession
	}
	return p, nil
}

func (a *API) registerAuth() {
	a.handle("POST", "/api/v1/session", a.login)
	a.handle("GET", "/api/v1/session", a.whoami)
	a.handle("DELETE", "/api/v1/session", a.logout)
	a.handle("GET", "/api/v1/users", a.listUsers)
	a.handle("POST", "/api/v1/users", a.createUser)
	a.handle("PUT", "/api/v1/users/{name}", a.updateUser)
	a.handle("DELETE", "/api/v1/users/{name}", a.deleteUser)
	a.handle("GET", "/api/v1/api-keys", a.listAPIKeys)
	a.handle("POST", "/api/v1/api-keys", a.createAPIKey)
	a.handle("DELETE", "/api/v1/api-keys/{id}", a.revokeAPIKey)
}

type sessionJSON struct {
	User      string `json:"user"`
	Role      string `json:"role"`
	CSRFToken string `json:"csrf_token,omitempty"`
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *API) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.SecureCookies, MaxAge: maxAge}
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	var in struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	tok, p, err := a.cfg.Users.Login(in.User, in.Password, clientAddr(r))
	var rl *users.RateLimitError
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second)/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "rate_limited", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong user name or password")
		return
	}
	http.SetCookie(w, a.sessionCookie(r, tok, 0))
	writeJSON(w, http.StatusOK, sessionJSON{User: strings.TrimPrefix(p.Name, "user:"), Role: p.Role.String(), CSRFToken: p.CSRF})
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, sessionJSON{User: strings.TrimPrefix(p.Name, "user:"), Role: p.Role.String(), CSRFToken: p.CSRF})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && a.cfg.Users != nil {
		a.cfg.Users.Logout(c.Value)
	}
	http.SetCookie(w, a.sessionCookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
}

type userJSON struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) usersError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, users.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, users.ErrExists), errors.Is(err, users.ErrLastAdmin):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, users.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		a.log.Error("api: users", slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (a *API) listUsers(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	out := []userJSON{}
	for _, u := range a.cfg.Users.Users() {
		out = append(out, userJSON{Name: u.Name, Role: u.Role.String(), CreatedAt: u.Created.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	var in struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		Role     string `json:"role"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	role, err := users.ParseRole(in.Role)
	if err == nil {
		err = a.cfg.Users.CreateUser(in.Name, in.Password, role)
	}
	if err != nil {
		a.usersError(w, err)
		return
	}
	a.log.Info("user created", slog.String("user", in.Name), slog.String("role", role.String()), slog.String("by", actorName(r)))
	writeJSON(w, http.StatusCreated, userJSON{Name: in.Name, Role: role.String(), CreatedAt: a.cfg.Clock.Now().UTC()})
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	var in struct {
		Password *string `json:"password"`
		Role     *string `json:"role"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	name := r.PathValue("name")
	if in.Role != nil {
		role, err := users.ParseRole(*in.Role)
		if err == nil {
			err = a.cfg.Users.SetRole(name, role)
		}
		if err != nil {
			a.usersError(w, err)
			return
		}
	}
	if in.Password != nil {
		if err := a.cfg.Users.SetPassword(name, *in.Password); err != nil {
			a.usersError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	if err := a.cfg.Users.DeleteUser(r.PathValue("name")); err != nil {
		a.usersError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type apiKeyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
	// Key is the whole key, in the create reply only.
	Key string `json:"key,omitempty"`
}

func toAPIKey(k users.KeyInfo) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, Name: k.Name, Role: k.Role.String(), CreatedBy: k.CreatedBy, CreatedAt: k.Created.UTC()}
	if !k.Revoked.IsZero() {
		t := k.Revoked.UTC()
		out.RevokedAt = &t
	}
	if !k.LastUsed.IsZero() {
		t := k.LastUsed.UTC()
		out.LastUsed = &t
	}
	return out
}

func (a *API) listAPIKeys(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	out := []apiKeyJSON{}
	for _, k := range a.cfg.Users.APIKeys() {
		out = append(out, toAPIKey(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": out})
}

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	role, err := users.ParseRole(in.Role)
	if err != nil {
		a.usersError(w, err)
		return
	}
	info, key, err := a.cfg.Users.CreateAPIKey(in.Name, role, actorName(r))
	if err != nil {
		a.usersError(w, err)
		return
	}
	out := toAPIKey(info)
	out.Key = key
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Users == nil {
		a.unavailable(w, "users")
		return
	}
	if err := a.cfg.Users.RevokeAPIKey(r.PathValue("id")); err != nil {
		a.usersError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
