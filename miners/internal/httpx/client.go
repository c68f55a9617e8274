package httpx

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
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/miners"
)

// Client sends one driver's requests to its miner. Like the driver it is used from one goroutine at a time.
type Client struct {
	cfg       Config
	accept    string
	mismatch  error
	client    *http.Client
	transport *http.Transport // owned; nil when Config.Transport was given
}

// New returns a client for cfg, whose defaults are applied already. accept is the Accept header of every
// request; mismatch is the driver's ErrSchemeMismatch, wrapped together with miners.ErrUnreachable when HTTP
// meets an HTTPS server or TLS a plain one.
func New(cfg Config, accept string, mismatch error) *Client {
	c := &Client{cfg: cfg, accept: accept, mismatch: mismatch}
	rt := cfg.Transport
	if rt == nil {
		c.transport = newTransport(cfg)
		rt = c.transport
	}
	c.client = &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// CloseIdleConnections releases the idle connections of the client's own transport. It is safe to call
// more than once.
func (c *Client) CloseIdleConnections() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

// newTransport is the client's own transport: no proxy (miners sit on the site LAN), bounded headers, one
// or two keep-alive connections to the rig.
func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	if ip := net.ParseIP(cfg.SourceIP); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
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

// Reply is one answered request, body read in full (bounded).
type Reply struct {
	Status      int
	ContentType string // the media type of Content-Type, without parameters
	Body        []byte
	Header      http.Header
}

// Do sends one request and reads the reply within Config.RequestTimeout (or ctx's earlier deadline),
// following redirects only to the same scheme and host:port. body, when not nil, is sent as JSON. authz
// computes the Authorization header for each hop from its method and request URI ("" for none).
func (c *Client) Do(ctx context.Context, method string, u *url.URL, body []byte, authz func(method, uri string) string) (*Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
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
		req.Header.Set("Accept", c.accept)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if a := authz(method, u.RequestURI()); a != "" {
			req.Header.Set("Authorization", a)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return nil, c.transportErr(ctx, method, u, err)
		}
		rep, err := c.read(ctx, method, u, resp)
		if err != nil {
			return nil, err
		}
		if rep.Status < 300 || rep.Status > 399 || rep.Status == http.StatusNotModified {
			return rep, nil
		}
		loc := rep.Header.Get("Location")
		next, err := u.Parse(loc)
		switch {
		case loc == "" || err != nil:
			return nil, fmt.Errorf("%s %s: redirect %d with unusable Location %q: %w", method, u.Path, rep.Status, loc, miners.ErrMalformed)
		case next.Scheme != u.Scheme || !strings.EqualFold(next.Host, u.Host):
			return nil, fmt.Errorf("%s %s: redirect to %s://%s refused (another host or scheme than %s://%s): %w",
				method, u.Path, next.Scheme, next.Host, u.Scheme, u.Host, miners.ErrMalformed)
		case hop >= MaxRedirects:
			return nil, fmt.Errorf("%s %s: more than %d redirects: %w", method, u.Path, MaxRedirects, miners.ErrMalformed)
		}
		if rep.Status == http.StatusSeeOther || ((rep.Status == http.StatusFound || rep.Status == http.StatusMovedPermanently) && method == http.MethodPost) {
			method, body = http.MethodGet, nil
		}
		u = next
	}
}

// read reads resp's body up to MaxBodyBytes within the request's deadline.
func (c *Client) read(ctx context.Context, method string, u *url.URL, resp *http.Response) (*Reply, error) {
	defer resp.Body.Close()
	limit := c.cfg.MaxBodyBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s %s: reply of %d bytes exceeds %d: %w", method, u.Path, resp.ContentLength, limit, miners.ErrMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.transportErr(ctx, method, u, fmt.Errorf("reading the reply: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s %s: reply exceeds %d bytes: %w", method, u.Path, limit, miners.ErrMalformed)
	}
	rep := &Reply{Status: resp.StatusCode, Body: body, Header: resp.Header}
	rep.ContentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte("HTTP request to an HTTPS server")) {
		return nil, fmt.Errorf("%s %s: %s speaks HTTPS, the driver spoke plain HTTP (set Scheme \"https\"): %w: %w",
			method, u.Path, u.Host, c.mismatch, miners.ErrUnreachable)
	}
	return rep, nil
}

// transportErr classifies a failed exchange: a deadline, a TLS/plain mix-up, or the rig being unreachable.
func (c *Client) transportErr(ctx context.Context, method string, u *url.URL, err error) error {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%s %s: %s speaks plain HTTP, the driver spoke TLS (set Scheme \"http\"): %w: %w",
			method, u.Path, u.Host, c.mismatch, miners.ErrUnreachable)
	}
	if s := err.Error(); strings.Contains(s, `malformed HTTP response "\x15\x03`) || strings.Contains(s, `malformed HTTP response "\x16\x03`) {
		return fmt.Errorf("%s %s: %s answered with TLS, the driver spoke plain HTTP (set Scheme \"https\"): %w: %w",
			method, u.Path, u.Host, c.mismatch, miners.ErrUnreachable)
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

// DecodeJSON parses rep's body into v whatever its content type, naming HTML and the label on failure.
// jsonTypes are the content types, besides application/json, the firmware labels JSON with: they go
// unmentioned in the error.
func DecodeJSON(what string, rep *Reply, v any, jsonTypes ...string) error {
	body := bytes.TrimSpace(rep.Body)
	if len(body) == 0 {
		return fmt.Errorf("%s: empty reply (status %d): %w", what, rep.Status, miners.ErrMalformed)
	}
	if body[0] == '<' {
		return fmt.Errorf("%s: got HTML (%q), not JSON: %w", what, rep.ContentType, miners.ErrMalformed)
	}
	if err := json.Unmarshal(body, v); err != nil {
		label := ""
		if ct := rep.ContentType; ct != "" && ct != "application/json" && !slices.Contains(jsonTypes, ct) {
			label = fmt.Sprintf(" (labelled %q)", ct)
		}
		return fmt.Errorf("%s: invalid JSON%s: %v: %w", what, label, err, miners.ErrMalformed)
	}
	return nil
}

// StatusErr turns a non-2xx answer into an error carrying msg, the rig's own message: a gateway error is
// miners.ErrUnreachable, anything else miners.ErrRefused.
func StatusErr(what string, rep *Reply, msg string) error {
	switch rep.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Errorf("%s: HTTP %d %s: %w", what, rep.Status, msg, miners.ErrUnreachable)
	default:
		return fmt.Errorf("%s: HTTP %d %s: %w", what, rep.Status, msg, miners.ErrRefused)
	}
}

// QuoteShort quotes s for an error text, cut to 200 bytes.
func QuoteShort(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
