package httpsim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Endpoint is one miner's HTTP listener, its fault, its reboots and its write log. Its methods are safe for
// concurrent use; they never call back into the owner while holding the endpoint's lock, so an owner may call
// them under its own.
type Endpoint struct {
	fleet *Fleet
	id    string
	owner any

	mu        sync.Mutex
	addr      string       // host:port; the port is fixed at the first listen
	srv       *http.Server // nil while down
	ln        net.Listener
	fault     Fault
	rebooting bool
	reboots   int
	bootTimer clock.Timer
	log       []Write
}

type endpointKey struct{}

// OwnerOf returns the owner of the endpoint r came in on: every endpoint's server puts itself in its base
// context, so one router serves the whole fleet.
func OwnerOf(r *http.Request) any { return endpointOf(r).owner }

func endpointOf(r *http.Request) *Endpoint { return r.Context().Value(endpointKey{}).(*Endpoint) }

// Addr returns the listener's host:port.
func (e *Endpoint) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Reachable reports whether the endpoint accepts connections now (not rebooting, not FaultDown).
func (e *Endpoint) Reachable() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv != nil
}

// Rebooting reports whether the endpoint is down for a reboot; Reboots counts the reboots so far.
func (e *Endpoint) Rebooting() (rebooting bool, reboots int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rebooting, e.reboots
}

// Writes returns a copy of the endpoint's write log.
func (e *Endpoint) Writes() []Write {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// Fault returns the endpoint's current fault.
func (e *Endpoint) Fault() Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fault
}

// SetFault sets the endpoint's fault; FaultNone clears it. FaultDown closes the listener and every
// connection; clearing it listens again (unless the miner is rebooting).
func (e *Endpoint) SetFault(fault Fault) error {
	if fault < FaultNone || fault >= faultEnd {
		return fmt.Errorf("%s: unknown fault %d", e.fleet.cfg.Name, int(fault))
	}
	e.mu.Lock()
	e.fault = fault
	var err error
	if fault != FaultDown && e.srv == nil && !e.rebooting {
		err = e.listenLocked()
	}
	e.mu.Unlock()
	if fault == FaultDown {
		return e.stop()
	}
	return err
}

// Reboot answers a reboot request with answer, then takes the endpoint down for Config.RebootDuration on
// Config.Clock. When that is over, boot (when not nil) brings the owner's state back, and the endpoint
// listens again unless under FaultDown.
func (e *Endpoint) Reboot(w http.ResponseWriter, answer func(http.ResponseWriter), boot func()) {
	cfg := e.fleet.cfg
	e.mu.Lock()
	e.rebooting = true
	e.reboots++
	if e.bootTimer != nil {
		e.bootTimer.Stop()
	}
	e.bootTimer = cfg.Clock.AfterFunc(cfg.RebootDuration, func() { e.bootDone(boot) })
	srv, ln := e.srv, e.ln
	e.srv, e.ln = nil, nil // down from now on, as far as anyone can see
	e.mu.Unlock()
	if ln != nil {
		_ = ln.Close() // refuse new connections before the answer can prompt one
	}

	w.Header().Set("Connection", "close")
	answer(w)
	_ = http.NewResponseController(w).Flush()
	if srv != nil {
		_ = srv.Close() // then drop this connection and any other
	}
}

func (e *Endpoint) bootDone(boot func()) {
	e.mu.Lock()
	if !e.rebooting {
		e.mu.Unlock()
		return
	}
	e.rebooting = false
	e.mu.Unlock()
	if boot != nil {
		boot()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil && e.fault != FaultDown && !e.rebooting {
		_ = e.listenLocked()
	}
}

// listenLocked opens the endpoint's listener and serves it. e.mu is held.
func (e *Endpoint) listenLocked() error {
	f := e.fleet
	var ln net.Listener
	var err error
	for try := 0; try < 5; try++ { // the port may linger for a moment after a close
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	e.addr = ln.Addr().String()
	if f.serverTLS != nil {
		ln = tls.NewListener(ln, f.serverTLS)
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: f.cfg.ReadHeaderTimeout,
		ReadTimeout:       f.cfg.ReadHeaderTimeout + 5*time.Second,
		IdleTimeout:       f.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithValue(context.Background(), endpointKey{}, e) },
	}
	if !f.track() {
		ln.Close()
		return f.opts.ErrClosed
	}
	e.srv, e.ln = srv, ln
	go func() {
		defer f.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// stop closes the endpoint's listener and every connection, if it is up.
func (e *Endpoint) stop() error {
	e.mu.Lock()
	srv, ln := e.srv, e.ln
	e.srv, e.ln = nil, nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	// Close the listener ourselves: Serve may not have registered it with srv yet.
	err := errors.Join(ln.Close(), srv.Close())
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listener was closed by whichever came first
	}
	return err
}

// Method is a handler method of a simulator's miner type M, as a method expression: (*Miner).getConf.
type Method[M any] func(M, http.ResponseWriter, *http.Request)

// Handle registers h for pattern on the fleet's router mux, called on the miner (OwnerOf) the request is
// for. guard, when not nil, stands in front of h (authentication) and calls next to let the request through.
func Handle[M any](mux *http.ServeMux, pattern string, h Method[M], guard func(m M, next http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		m := OwnerOf(r).(M)
		if guard == nil {
			h(m, w, r)
			return
		}
		guard(m, func(w http.ResponseWriter, r *http.Request) { h(m, w, r) })(w, r)
	})
}
