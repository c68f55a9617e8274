package localui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
)

var (
	errLocked = errors.New("too many failed logins")
	errWrong  = errors.New("wrong user name or password")
)

// lockedError carries how long a lockout lasts.
type lockedError struct{ retry time.Duration }

func (e lockedError) Error() string {
	return fmt.Sprintf("too many failed logins from this address or for this user; try again in %s", roundUp(e.retry))
}
func (e lockedError) Unwrap() error { return errLocked }

func roundUp(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// authenticate checks a login and starts a session. Errors: lockedError (errLocked), errWrong (the attempt
// counted toward a lockout; if it started one, the lockedError is joined), ErrNoLocalAdmin, ctx's error.
func (s *Server) authenticate(ctx context.Context, user, password, remoteAddr string) (string, *session, error) {
	cred, err := s.creds.current()
	if err != nil {
		s.m.login("no_admin")
		s.log.Error("login attempt, but there is no usable local-admin credential", slog.Any("error", err))
		return "", nil, fmt.Errorf("%w", ErrNoLocalAdmin)
	}
	if len(user) > MaxUserLength {
		user = user[:MaxUserLength+1] // bounded key; can never match
	}
	keys := []string{clientKey(remoteAddr), "user:" + user}
	if wait := s.throttle.check(s.clock.Now(), keys...); wait > 0 {
		s.m.login("locked")
		return "", nil, lockedError{wait}
	}
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	// Check again: attempts queued behind the semaphore must not get past a lockout that started meanwhile.
	if wait := s.throttle.check(s.clock.Now(), keys...); wait > 0 {
		<-s.hashSem
		s.m.login("locked")
		return "", nil, lockedError{wait}
	}
	// The password is hashed whatever the user name, so a wrong name costs as long as a wrong password. The
	// outcome is recorded before the semaphore is released, so the next attempt's check sees it: at most
	// MaxConcurrentHashes-1 attempts beyond the threshold are ever verified.
	userOK := cred.userIs(user)
	passOK := len(password) <= MaxPasswordBytes && cred.matches(password)
	now := s.clock.Now()
	if !userOK || !passOK {
		locked := s.throttle.failed(now, keys...)
		<-s.hashSem
		s.m.login("wrong")
		attrs := []any{slog.String("client", remoteAddr), slog.String("user", user)}
		if locked > 0 {
			s.log.Warn("failed local UI login; locked out", append(attrs, slog.Duration("lockout", locked))...)
			return "", nil, errors.Join(errWrong, lockedError{locked})
		}
		s.log.Warn("failed local UI login", attrs...)
		return "", nil, errWrong
	}
	s.throttle.succeeded(keys...)
	<-s.hashSem
	id, sess := s.sessions.create(cred.user, cred.stamp, remoteAddr, now)
	s.m.login("ok")
	s.log.Info("local UI login", slog.String("client", remoteAddr), slog.String("user", cred.user))
	return id, sess, nil
}

// loginMessage is what the login page says for an authenticate error, and the status it answers with.
func loginMessage(err error) (int, string, time.Duration) {
	var le lockedError
	switch {
	case errors.As(err, &le) && errors.Is(err, errWrong):
		return http.StatusUnauthorized, "Wrong user name or password. " + le.Error() + ".", le.retry
	case errors.As(err, &le):
		return http.StatusTooManyRequests, capitalize(le.Error()) + ".", le.retry
	case errors.Is(err, errWrong):
		return http.StatusUnauthorized, "Wrong user name or password.", 0
	case errors.Is(err, ErrNoLocalAdmin):
		return http.StatusServiceUnavailable,
			"No local administrator is set on this node. On the node, run: hashfleet node set-local-admin", 0
	default:
		return http.StatusServiceUnavailable, "Login is not possible right now: " + err.Error(), 0
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(roundUp(d)/time.Second)))
	}
}

func (s *Server) getLogin(w http.ResponseWriter, r *http.Request) {
	if _, sess := s.sessionOf(r); sess != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", r.URL.Query().Get("next"))
}

// renderLogin shows the login form with a fresh login CSRF token, set as a cookie too (double submit: no
// session exists yet to hold a synchronizer token).
func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg, next string) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(time.Hour / time.Second)})
	_, noAdmin := s.creds.current()
	s.render(w, r, status, "login", pageData{
		Title: "Log in", CSRF: token, Error: msg, Next: localPath(next), NoAdmin: noAdmin != nil,
	})
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.m.login("bad_request")
		s.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.", "")
		return
	}
	next := r.PostForm.Get("next")
	c, err := r.Cookie(loginCookie)
	if err != nil || !csrfOK(r.PostForm.Get(CSRFField), c.Value) {
		s.m.refuse("csrf")
		s.m.login("bad_request")
		s.renderLogin(w, r, http.StatusForbidden,
			"The login form expired or did not come from this page (CSRF check failed). Try again.", next)
		return
	}
	id, _, err := s.authenticate(r.Context(), r.PostForm.Get("user"), r.PostForm.Get("password"), r.RemoteAddr)
	if err != nil {
		status, msg, retry := loginMessage(err)
		setRetryAfter(w, retry)
		s.renderLogin(w, r, status, msg, next)
		return
	}
	if old, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.delete(old.Value) // a login always gets a new session id
	}
	clearCookie(w, loginCookie)
	s.setSessionCookie(w, id)
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func (s *Server) postLogout(w http.ResponseWriter, r *http.Request, sess *session) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.delete(c.Value)
	}
	clearCookie(w, SessionCookie)
	s.log.Info("local UI logout", slog.String("client", r.RemoteAddr), slog.String("user", sess.user))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
