package antweb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// Fleet is a running set of simulated Antminers: a miners/sim fleet for the API and one web server per
// miner. Its methods are safe for concurrent use.
type Fleet struct {
	cfg       Config
	api       *sim.Fleet
	miners    []*Miner
	byID      map[string]*Miner
	serverTLS *tls.Config
	clientTLS *tls.Config
	mux       http.Handler // one router for every miner; the miner comes from the request context

	mu     sync.Mutex // guards closed and the Add side of wg
	closed bool
	wg     sync.WaitGroup // server loops, handlers, reply writers
	done   chan struct{}
	ctx    context.Context // cancelled by Close: ends write-through calls not tied to a request
	cancel context.CancelFunc
}

const certName = "antweb.sim.hashfleet.invalid"

// Start validates cfg, starts the CGMiner side (miners/sim) and one web listener per miner.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	api, err := sim.Start(sim.Config{
		Count: cfg.Count, Host: cfg.Host, Port: cfg.APIPort, PerMinerIP: cfg.PerMinerIP, BaseIP: cfg.BaseIP,
		Seed: cfg.Seed, Clock: cfg.Clock, RebootDuration: cfg.RebootDuration, SlowDelay: cfg.APISlowDelay,
		IDPrefix: cfg.IDPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("antweb: start the CGMiner side: %w", err)
	}
	f := &Fleet{cfg: cfg, api: api, byID: make(map[string]*Miner, cfg.Count), done: make(chan struct{}), mux: routes()}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if cfg.TLS {
		if f.serverTLS, f.clientTLS, err = selfSigned(); err != nil {
			f.cancel()
			_ = api.Close()
			return nil, fmt.Errorf("antweb: make certificate: %w", err)
		}
	}
	for i, sm := range api.Miners() {
		host, _, _ := net.SplitHostPort(sm.Addr())
		port := cfg.Port
		if !cfg.PerMinerIP && port != 0 {
			port += i
		}
		var op [8]byte
		_, _ = rand.Read(op[:])
		m := &Miner{
			fleet:     f,
			id:        sm.ID(),
			api:       sm,
			drv:       cgminer.New(&pb.Device{MinerId: sm.ID(), Address: sm.Addr()}, cgminer.Config{Clock: cfg.Clock}),
			addr:      net.JoinHostPort(host, strconv.Itoa(port)),
			user:      cfg.Username,
			pass:      cfg.Password,
			opaque:    hex.EncodeToString(op[:]),
			hostname:  fmt.Sprintf("Antminer-%04d", i),
			workMode:  modeNormal,
			passwords: map[string]string{},
			nonces:    map[string]*nonceState{},
		}
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
	}
	for _, m := range f.miners {
		m.mu.Lock()
		err := m.listenLocked()
		m.mu.Unlock()
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("antweb: start %s: %w", m.id, err)
		}
	}
	return f, nil
}

// API returns the CGMiner side, for its faults and write log.
func (f *Fleet) API() *sim.Fleet { return f.api }

// Devices returns one Device per miner: Protocol ANTMINER, Address the CGMiner API, WebAddress the web CGI.
func (f *Fleet) Devices() []*pb.Device {
	out := f.api.Devices()
	for i, d := range out {
		d.Protocol = pb.Protocol_PROTOCOL_ANTMINER
		d.WebAddress = f.miners[i].Addr()
	}
	return out
}

// Miners returns every miner in index order.
func (f *Fleet) Miners() []*Miner { return slices.Clone(f.miners) }

// Miner returns the miner with id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// WriteLog returns every miner's web write log merged in time order.
func (f *Fleet) WriteLog() []WriteRecord {
	var out []WriteRecord
	for _, m := range f.miners {
		out = append(out, m.WriteLog()...)
	}
	slices.SortStableFunc(out, func(a, b WriteRecord) int { return a.At.Compare(b.At) })
	return out
}

// SetFault sets the web-side fault of miner id (API-side faults: Fleet.API().Miner(id).SetFault).
func (f *Fleet) SetFault(id string, fault Fault) error {
	m := f.byID[id]
	if m == nil {
		return fmt.Errorf("set fault on %q: %w", id, ErrUnknownMiner)
	}
	return m.SetFault(fault)
}

// ClientTLS returns a client configuration trusting the fleet's certificate, or nil without Config.TLS.
func (f *Fleet) ClientTLS() *tls.Config {
	if f.clientTLS == nil {
		return nil
	}
	return f.clientTLS.Clone()
}

// Close stops both sides of every miner and waits for every goroutine. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if already {
		return nil
	}
	var errs []error
	for _, m := range f.miners {
		m.mu.Lock()
		if m.bootTimer != nil {
			m.bootTimer.Stop()
		}
		m.mu.Unlock()
		if err := m.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	close(f.done)
	f.cancel()
	f.wg.Wait()
	errs = append(errs, f.api.Close())
	for _, m := range f.miners {
		errs = append(errs, m.drv.Close())
	}
	return errors.Join(errs...)
}

func (f *Fleet) track() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// listenLocked opens the miner's web listener and serves it. m.mu is held.
func (m *Miner) listenLocked() error {
	f := m.fleet
	var ln net.Listener
	var err error
	for try := 0; try < 5; try++ {
		if ln, err = net.Listen("tcp", m.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	m.addr = ln.Addr().String()
	if f.serverTLS != nil {
		ln = tls.NewListener(ln, f.serverTLS)
	}
	srv := &http.Server{
		Handler:           m,
		ReadHeaderTimeout: f.cfg.ReadHeaderTimeout,
		ReadTimeout:       f.cfg.ReadHeaderTimeout + 5*time.Second,
		IdleTimeout:       f.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithValue(context.Background(), minerKey{}, m) },
	}
	if !f.track() {
		ln.Close()
		return ErrClosed
	}
	m.srv, m.ln = srv, ln
	go func() {
		defer f.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// stop closes the miner's web listener and every connection, if it is up.
func (m *Miner) stop() error {
	m.mu.Lock()
	srv, ln := m.srv, m.ln
	m.srv, m.ln = nil, nil
	m.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := errors.Join(ln.Close(), srv.Close())
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: certName},
		DNSNames:              []string{certName},
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
	client = &tls.Config{RootCAs: pool, ServerName: certName, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
