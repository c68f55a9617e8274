package proto

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/miners"
)

// newTransport is the driver's own transport: no proxy (miners sit on the site LAN), bounded headers, one
// or two keep-alive connections to the rig.
func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        cfg.TLS,
		TLSHandshakeTimeout:    cfg.RequestTimeout,
		ResponseHeaderTimeout:  cfg.RequestTimeout,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// reply is one answered request, body read in full (bounded).
type reply struct {
	status int
	ctype  string
	body   []byte
	header http.Header
}

// exchange sends one request and reads the reply, following redirects only to the same scheme and
// host:port. authz, when not empty, is the Authorization header.
func (d *Driver) exchange(ctx context.Context, method string, u *url.URL, body []byte, authz string) (*reply, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	for hop := 0; ; hop++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
		}
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			return nil, d.transportErr(ctx, method, u, err)
		}
		rep, err := d.readReply(ctx, method, u, resp)
		if err != nil {
			return nil, err
		}
		if rep.status < 300 || rep.status > 399 || rep.status == http.StatusNotModified {
			return rep, nil
		}
		loc := rep.header.Get("Location")
		next, err := u.Parse(loc)
		switch {
		case loc == "" || err != nil:
			return nil, fmt.Errorf("%s %s: redirect %d with unusable Location %q: %w", method, u.Path, rep.status, loc, miners.ErrMalformed)
		case next.Scheme != u.Scheme || !strings.EqualFold(next.Host, u.Host):
			return nil, fmt.Errorf("%s %s: redirect to %s://%s refused (another host or scheme than %s://%s): %w",
				method, u.Path, next.Scheme, next.Host, u.Scheme, u.Host, miners.ErrMalformed)
		case hop >= maxRedirects:
			return nil, fmt.Errorf("%s %s: more than %d redirects: %w", method, u.Path, maxRedirects, miners.ErrMalformed)
		}
		if rep.status == http.StatusSeeOther || ((rep.status == http.StatusFound || rep.status == http.StatusMovedPermanently) && method == http.MethodPost) {
			method, body = http.MethodGet, nil
		}
		u = next
	}
}

// readReply reads resp's body up to MaxBodyBytes within the request's deadline.
func (d *Driver) readReply(ctx context.Context, method string, u *url.URL, resp *http.Response) (*reply, error) {
	defer resp.Body.Close()
	limit := d.cfg.MaxBodyBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s %s: reply of %d bytes exceeds %d: %w", method, u.Path, resp.ContentLength, limit, miners.ErrMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, d.transportErr(ctx, method, u, fmt.Errorf("reading the reply: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s %s: reply exceeds %d bytes: %w", method, u.Path, limit, miners.ErrMalformed)
	}
	rep := &reply{status: resp.StatusCode, body: body, header: resp.Header}
	rep.ctype, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte("HTTP request to an HTTPS server")) {
		return nil, fmt.Errorf("%s %s: %s speaks HTTPS, the driver spoke plain HTTP (set Scheme \"https\"): %w: %w",
			method, u.Path, u.Host, ErrSchemeMismatch, miners.ErrUnreachable)
	}
	return rep, nil
}

// transportErr classifies a failed exchange: a deadline, a TLS/plain mix-up, or the rig being unreachable.
func (d *Driver) transportErr(ctx context.Context, method string, u *url.URL, err error) error {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%s %s: %s speaks plain HTTP, the driver spoke TLS (set Scheme \"http\"): %w: %w",
			method, u.Path, u.Host, ErrSchemeMismatch, miners.ErrUnreachable)
	}
	if s := err.Error(); strings.Contains(s, `malformed HTTP response "\x15\x03`) || strings.Contains(s, `malformed HTTP response "\x16\x03`) {
		return fmt.Errorf("%s %s: %s answered with TLS, the driver spoke plain HTTP (set Scheme \"https\"): %w: %w",
			method, u.Path, u.Host, ErrSchemeMismatch, miners.ErrUnreachable)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %s timed out: %w: %w", method, u.Path, u.Host, miners.ErrUnreachable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s %s: %s timed out: %w: %w", method, u.Path, u.Host, miners.ErrUnreachable, err)
	}
	return fmt.Errorf("%s %s: %w: %w", method, u.Path, miners.ErrUnreachable, err)
}

// decodeJSON parses a reply body into v whatever its content type, naming HTML and the label on failure.
func decodeJSON(what string, rep *reply, v any) error {
	body := bytes.TrimSpace(rep.body)
	if len(body) == 0 {
		return fmt.Errorf("%s: empty reply (status %d): %w", what, rep.status, miners.ErrMalformed)
	}
	if body[0] == '<' {
		return fmt.Errorf("%s: got HTML (%q), not JSON: %w", what, rep.ctype, miners.ErrMalformed)
	}
	if err := json.Unmarshal(body, v); err != nil {
		label := ""
		if rep.ctype != "" && rep.ctype != "application/json" {
			label = fmt.Sprintf(" (labelled %q)", rep.ctype)
		}
		return fmt.Errorf("%s: invalid JSON%s: %v: %w", what, label, err, miners.ErrMalformed)
	}
	return nil
}

// statusErr turns a non-2xx answer into an error carrying the rig's message.
func statusErr(what string, rep *reply) error {
	msg := rigMessage(rep.body)
	switch {
	case rep.status == http.StatusBadGateway || rep.status == http.StatusServiceUnavailable || rep.status == http.StatusGatewayTimeout:
		return fmt.Errorf("%s: HTTP %d %s: %w", what, rep.status, msg, miners.ErrUnreachable)
	default:
		return fmt.Errorf("%s: HTTP %d %s: %w", what, rep.status, msg, miners.ErrRefused)
	}
}

// rigMessage extracts {"message":...} or {"error":{"message":...}} for error texts, bounded.
func rigMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
		Error   struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.Message != "":
			return quoteShort(m.Message)
		case m.Error.Message != "":
			return quoteShort(m.Error.Code + ": " + m.Error.Message)
		}
	}
	return quoteShort(string(body))
}

func quoteShort(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
