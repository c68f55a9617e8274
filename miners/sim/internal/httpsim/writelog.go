package httpsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrBodyTooLarge: a request body is larger than MaxRequestBytes.
var ErrBodyTooLarge = errors.New("request body too large")

// Write is one write a miner received, accepted or not.
type Write struct {
	MinerID string
	At      time.Time // on Config.Clock
	Method  string
	Path    string
	// Params are the query and the body: JSON flattened to dotted keys ("pools.0.url"), or with
	// Options.FormBodies form fields; values of keys containing "pass" are replaced by "***".
	Params map[string]string
	Remote string // the caller's host:port
	Status int    // HTTP status answered
	Note          // what the handlers noted
}

// Note is what the handlers learnt about a request, for its write-log record.
type Note struct {
	Principal   string // who authenticated, "" when nobody did
	AuthFailure string // why authentication failed
	Refused     bool   // the miner refused the write in a 2xx reply
}

type noteKey struct{}

// NoteOf returns r's note, for the handlers to fill in (a throwaway one outside the write log).
func NoteOf(r *http.Request) *Note {
	if n, ok := r.Context().Value(noteKey{}).(*Note); ok {
		return n
	}
	return &Note{}
}

// logged buffers the request body (bounded) and appends the writes Options.IsWrite picks to the endpoint's
// log, with the status, when the reply starts: before the reply can reach the caller (a reboot takes the
// miner down right after answering).
func (f *Fleet) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
		if err == nil && len(body) > MaxRequestBytes {
			err = ErrBodyTooLarge
		}
		if err != nil {
			f.opts.BadBody(w, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		note := &Note{}
		r = r.WithContext(context.WithValue(r.Context(), noteKey{}, note))
		sw := &statusWriter{ResponseWriter: w}
		if f.opts.IsWrite(r) {
			e := endpointOf(r)
			sw.onHeader = func(code int) {
				rec := Write{MinerID: e.id, At: f.cfg.Clock.Now(), Method: r.Method, Path: r.URL.Path,
					Params: params(r.URL.Query(), body, f.opts.FormBodies), Remote: r.RemoteAddr, Status: code, Note: *note}
				e.mu.Lock()
				e.log = append(e.log, rec)
				e.mu.Unlock()
			}
		}
		next.ServeHTTP(sw, r)
		sw.header(http.StatusOK) // a handler that wrote nothing answered 200
	})
}

// statusWriter calls onHeader once, with the status, when the reply starts.
type statusWriter struct {
	http.ResponseWriter
	onHeader func(code int)
	wrote    bool
}

func (s *statusWriter) header(code int) {
	if s.wrote {
		return
	}
	s.wrote = true
	if s.onHeader != nil {
		s.onHeader(code)
	}
}

func (s *statusWriter) WriteHeader(code int) {
	s.header(code)
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.header(http.StatusOK)
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// params flattens a write's query and body for the write log.
func params(query url.Values, body []byte, forms bool) map[string]string {
	out := map[string]string{}
	for k, vs := range query {
		out[k] = strings.Join(vs, ",")
	}
	var v any
	switch {
	case len(body) == 0:
	case json.Unmarshal(body, &v) == nil:
		flatten(out, "", v)
	case !forms:
		out["_body"] = "(not JSON, " + strconv.Itoa(len(body)) + " bytes)"
	default:
		if form, err := url.ParseQuery(string(body)); err == nil && len(form) > 0 {
			for k, vs := range form {
				flatten(out, k, strings.Join(vs, ","))
			}
		} else {
			out["_body"] = "(unreadable, " + strconv.Itoa(len(body)) + " bytes)"
		}
	}
	return out
}

func flatten(out map[string]string, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(out, join(k), e)
		}
	case []any:
		for i, e := range x {
			flatten(out, join(strconv.Itoa(i)), e)
		}
	default:
		key := prefix
		if key == "" {
			key = "_"
		}
		if last := key[strings.LastIndexByte(key, '.')+1:]; strings.Contains(strings.ToLower(last), "pass") {
			out[key] = "***"
			return
		}
		switch y := x.(type) {
		case string:
			out[key] = y
		case nil:
			out[key] = "null"
		default:
			b, _ := json.Marshal(y)
			out[key] = string(b)
		}
	}
}
