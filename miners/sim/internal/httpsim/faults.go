package httpsim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is a misbehaviour injected into one miner's HTTP side. Faults are about the reply; under FaultSlow
// and FaultWrongContentType the request is still carried out, under the others it is not.
type Fault int

const (
	// FaultNone: the miner behaves.
	FaultNone Fault = iota
	// FaultDown: the listener and every connection are closed; connections are refused until cleared.
	FaultDown
	// FaultSlow: the status line and headers come at once, then the body one byte per Config.SlowByteDelay
	// (slow loris).
	FaultSlow
	// FaultHang: the request is read and never answered, until the client gives up, the fault is cleared or
	// the fleet closes.
	FaultHang
	// FaultMalformedJSON: 200 with a truncated JSON body.
	FaultMalformedJSON
	// FaultHugeBody: 200 with a JSON body of Config.HugeBodyBytes.
	FaultHugeBody
	// FaultRedirect: 302 to Config.RedirectURL plus the request path, another host.
	FaultRedirect
	// FaultWrongContentType: the right JSON, labelled text/html.
	FaultWrongContentType
	faultEnd
)

var faultNames = [...]string{"none", "down", "slow", "hang", "malformed-json", "huge-body", "redirect", "wrong-content-type"}

func (f Fault) String() string {
	if f >= FaultNone && f < faultEnd {
		return faultNames[f]
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// ServeHTTP applies the endpoint's fault, then routes. Every handler is tracked so Close can wait for it.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := e.fleet
	if ee, _ := r.Context().Value(endpointKey{}).(*Endpoint); ee != e { // served other than through its own server
		r = r.WithContext(context.WithValue(r.Context(), endpointKey{}, e))
	}
	if !f.track() {
		w.Header().Set("Connection", "close")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer f.wg.Done()
	switch e.Fault() {
	case FaultHang:
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxRequestBytes))
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		panic(http.ErrAbortHandler) // never answer: drop the connection without a response
	case FaultMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, f.opts.Malformed)
	case FaultHugeBody:
		e.writeHuge(w, r)
	case FaultRedirect:
		w.Header().Set("Location", strings.TrimSuffix(f.cfg.RedirectURL, "/")+r.URL.RequestURI())
		w.WriteHeader(http.StatusFound)
	case FaultSlow, FaultWrongContentType:
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		f.handler.ServeHTTP(rec, r)
		e.replay(w, r, rec)
	default:
		f.handler.ServeHTTP(w, r)
	}
}

// writeHuge sends a syntactically endless JSON string until HugeBodyBytes or the client goes away.
func (e *Endpoint) writeHuge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, `{"message":"`); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("A"), 32<<10)
	for left := e.fleet.cfg.HugeBodyBytes; left > 0; left -= int64(len(chunk)) {
		if r.Context().Err() != nil {
			return
		}
		if _, err := w.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, `"}`)
}

// replay writes a recorded reply with the fault applied: relabelled, or one byte at a time.
func (e *Endpoint) replay(w http.ResponseWriter, r *http.Request, rec *recorder) {
	fault, delay := e.Fault(), e.fleet.cfg.SlowByteDelay
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if fault == FaultWrongContentType {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	if fault != FaultSlow {
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
	w.WriteHeader(rec.code)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	t := time.NewTimer(delay)
	defer t.Stop()
	for _, b := range rec.body.Bytes() {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-e.fleet.done:
			return
		}
		if _, err := w.Write([]byte{b}); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		t.Reset(delay)
	}
}

// recorder buffers a reply so a fault can rewrite it.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) { r.wrote = true; return r.body.Write(b) }
func (r *recorder) Flush()                      {}
