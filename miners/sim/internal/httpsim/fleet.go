package httpsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Options is what a simulator adds to its Config to start a Fleet.
type Options struct {
	// Handler routes every miner's requests (OwnerOf tells whose), behind the faults and the write log.
	Handler http.Handler
	// IsWrite picks the requests the write log records.
	IsWrite func(*http.Request) bool
	// BadBody answers a request whose body could not be read or is larger than MaxRequestBytes (err wraps
	// ErrBodyTooLarge then).
	BadBody func(w http.ResponseWriter, err error)
	// FormBodies: a write's body that is not JSON is read as a form for the write log.
	FormBodies bool
	// Malformed is what FaultMalformedJSON answers: JSON in the simulator's shape, cut off.
	Malformed string
	// ErrClosed and ErrUnknownMiner are the simulator's own errors.
	ErrClosed, ErrUnknownMiner error
}

// Fleet is the web side of a simulated fleet: one Endpoint per miner. Its methods are safe for concurrent
// use.
type Fleet struct {
	cfg       Config
	opts      Options
	handler   http.Handler // opts.Handler behind the write log
	endpoints []*Endpoint
	byID      map[string]*Endpoint
	serverTLS *tls.Config
	clientTLS *tls.Config

	mu     sync.Mutex // guards closed and the Add side of wg
	closed bool
	wg     sync.WaitGroup // server loops, handlers, reply writers, tracked work
	done   chan struct{}  // closed by Close: hung handlers return
	ctx    context.Context
	cancel context.CancelFunc
}

// NewFleet returns a fleet without endpoints for cfg, which has its defaults; with Config.TLS it makes the
// self-signed certificate the endpoints serve. Add the endpoints, then Listen.
func NewFleet(cfg Config, opts Options) (*Fleet, error) {
	f := &Fleet{cfg: cfg, opts: opts, byID: make(map[string]*Endpoint, cfg.Count), done: make(chan struct{})}
	f.handler = f.logged(opts.Handler)
	if cfg.TLS {
		var err error
		if f.serverTLS, f.clientTLS, err = selfSigned(cfg.Name + ".sim.hashfleet.invalid"); err != nil {
			return nil, fmt.Errorf("%s: make certificate: %w", cfg.Name, err)
		}
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// Add adds the endpoint of miner id, to listen on addr (host:port, port 0 for an ephemeral one). owner is
// the simulator's miner, which OwnerOf returns for its requests.
func (f *Fleet) Add(id, addr string, owner any) *Endpoint {
	e := &Endpoint{fleet: f, id: id, owner: owner, addr: addr}
	f.endpoints = append(f.endpoints, e)
	f.byID[id] = e
	return e
}

// Listen opens every endpoint's listener. On an error the caller closes the fleet.
func (f *Fleet) Listen() error {
	for _, e := range f.endpoints {
		e.mu.Lock()
		err := e.listenLocked()
		e.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: start %s: %w", f.cfg.Name, e.id, err)
		}
	}
	return nil
}

// SetFault sets the fault of miner id; FaultNone clears it.
func (f *Fleet) SetFault(id string, fault Fault) error {
	e := f.byID[id]
	if e == nil {
		return fmt.Errorf("set fault on %q: %w", id, f.opts.ErrUnknownMiner)
	}
	return e.SetFault(fault)
}

// Writes returns every miner's write log merged in time order (ties in miner order).
func (f *Fleet) Writes() []Write {
	var out []Write
	for _, e := range f.endpoints {
		out = append(out, e.Writes()...)
	}
	slices.SortStableFunc(out, func(a, b Write) int { return a.At.Compare(b.At) })
	return out
}

// ClientTLS returns a client configuration that trusts the fleet's certificate, or nil without Config.TLS.
func (f *Fleet) ClientTLS() *tls.Config {
	if f.clientTLS == nil {
		return nil
	}
	return f.clientTLS.Clone()
}

// Tracked runs fn now, unless the fleet is closing; Close waits for it and cancels its ctx.
func (f *Fleet) Tracked(fn func(ctx context.Context)) {
	if !f.track() {
		return
	}
	defer f.wg.Done()
	fn(f.ctx)
}

// Close stops every endpoint and waits for every goroutine the fleet started, then runs finish (when not
// nil) for what the simulator has to close besides. It is safe to call more than once.
func (f *Fleet) Close(finish func() error) error {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if already {
		return nil
	}
	var errs []error
	for _, e := range f.endpoints {
		e.mu.Lock()
		if e.bootTimer != nil {
			e.bootTimer.Stop()
		}
		e.mu.Unlock()
		if err := e.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	close(f.done) // hung handlers return; their connections are closed already
	f.cancel()
	f.wg.Wait()
	if finish != nil {
		errs = append(errs, finish())
	}
	return errors.Join(errs...)
}

// track registers one goroutine or handler; false once the fleet is closing.
func (f *Fleet) track() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// selfSigned makes the fleet's certificate for name and the matching client configuration.
func selfSigned(name string) (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
