package protorig

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
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Fleet is a running set of simulated rigs. Its methods are safe for concurrent use.
type Fleet struct {
	cfg       Config
	miners    []*Miner
	byID      map[string]*Miner
	serverTLS *tls.Config
	clientTLS *tls.Config
	mux       http.Handler // one router for every rig; the rig comes from the request context

	mu     sync.Mutex // guards closed and the Add side of wg
	closed bool
	wg     sync.WaitGroup // server loops, handlers, reply writers
	done   chan struct{}  // closed by Close: hung handlers return
}

// certName is the DNS name in the fleet's self-signed certificate; Fleet.ClientTLS sets it as ServerName.
const certName = "protorig.sim.hashfleet.invalid"

// Start validates cfg, opens one listener per rig and serves them until Close.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Fleet{cfg: cfg, byID: make(map[string]*Miner, cfg.Count), done: make(chan struct{}), mux: routes()}
	if cfg.TLS {
		var err error
		if f.serverTLS, f.clientTLS, err = selfSigned(); err != nil {
			return nil, fmt.Errorf("protorig: make certificate: %w", err)
		}
	}
	var ips []netip.Addr
	if cfg.PerMinerIP {
		ips, _ = minerIPs(cfg.BaseIP, cfg.Count)
	}
	now := cfg.Clock.Now()
	for i := range cfg.Count {
		host, port := cfg.Host, cfg.Port
		if cfg.PerMinerIP {
			host = ips[i].String()
		} else if port != 0 {
			port += i
		}
		m := &Miner{
			fleet: f,
			id:    fmt.Sprintf("%s%04d", cfg.IDPrefix, i),
			addr:  net.JoinHostPort(host, strconv.Itoa(port)),
			rig:   newRig(mrand.New(mrand.NewPCG(uint64(cfg.Seed), uint64(i))), i, cfg.Password, now),
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
			return nil, fmt.Errorf("protorig: start %s: %w", m.id, err)
		}
	}
	return f, nil
}

// Devices returns one Device per rig: Protocol PROTO, Address and WebAddress both the REST endpoint.
func (f *Fleet) Devices() []*pb.Device {
	out := make([]*pb.Device, 0, len(f.miners))
	for _, m := range f.miners {
		m.mu.Lock()
		out = append(out, &pb.Device{
			MinerId: m.id, Address: m.addr, WebAddress: m.addr, Protocol: pb.Protocol_PROTOCOL_PROTO,
			Model: m.rig.model, Serial: m.rig.serial, Mac: m.rig.mac,
		})
		m.mu.Unlock()
	}
	return out
}

// Miners returns every rig, in id order.
func (f *Fleet) Miners() []*Miner { return slices.Clone(f.miners) }

// Miner returns the rig with id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// WriteLog returns every rig's write log merged in time order (ties in miner order).
func (f *Fleet) WriteLog() []WriteRecord {
	var out []WriteRecord
	for _, m := range f.miners {
		out = append(out, m.WriteLog()...)
	}
	slices.SortStableFunc(out, func(a, b WriteRecord) int { return a.At.Compare(b.At) })
	return out
}

// SetFault sets the fault of rig id; FaultNone clears it.
func (f *Fleet) SetFault(id string, fault Fault) error {
	m := f.byID[id]
	if m == nil {
		return fmt.Errorf("set fault on %q: %w", id, ErrUnknownMiner)
	}
	return m.SetFault(fault)
}

// ClientTLS returns a client configuration that trusts the fleet's certificate, or nil without Config.TLS.
func (f *Fleet) ClientTLS() *tls.Config {
	if f.clientTLS == nil {
		return nil
	}
	return f.clientTLS.Clone()
}

// Close stops every rig and waits for every goroutine the fleet started. It is safe to call more than once.
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
	close(f.done) // hung handlers return; their connections are closed already
	f.wg.Wait()
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

// Miner is one simulated rig.
type Miner struct {
	fleet *Fleet
	id    string
	mux   http.Handler

	mu        sync.Mutex
	addr      string // host:port; the port is fixed at the first listen
	rig       *rig
	srv       *http.Server // nil while down
	ln        net.Listener
	fault     Fault
	bootTimer clock.Timer
	log       []WriteRecord
	listenErr error
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// Addr returns the rig's host:port.
func (m *Miner) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Reachable reports whether the rig accepts connections now (not rebooting, not FaultDown).
func (m *Miner) Reachable() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv != nil
}

// Snapshot returns the rig's state as its API reports it now.
func (m *Miner) Snapshot() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rig.snapshot(m.id, m.fleet.cfg.Clock.Now())
}

// WriteLog returns a copy of the rig's write log.
func (m *Miner) WriteLog() []WriteRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

// SetCurtailment sets or lifts curtailment as the rig's own curtailment service would.
func (m *Miner) SetCurtailment(active bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.curtailed = active
	if !active && m.rig.hashing() {
		m.rig.miningSince = m.fleet.cfg.Clock.Now()
	}
}

// SetErrors replaces the rig's active errors.
func (m *Miner) SetErrors(errs []RigError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.errors = slices.Clone(errs)
}

// SetPassword changes the rig's login password.
func (m *Miner) SetPassword(pw string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rig.password = pw
}

// Fault returns the rig's current fault.
func (m *Miner) Fault() Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fault
}

// SetFault sets the rig's fault; FaultNone clears it. FaultDown closes the listener and every connection;
// clearing it listens again (unless the rig is rebooting).
func (m *Miner) SetFault(fault Fault) error {
	if fault < FaultNone || fault >= faultEnd {
		return fmt.Errorf("protorig: unknown fault %d", int(fault))
	}
	m.mu.Lock()
	m.fault = fault
	var err error
	if fault != FaultDown && m.srv == nil && !m.rig.rebooting {
		err = m.listenLocked()
	}
	m.mu.Unlock()
	if fault == FaultDown {
		return m.stop()
	}
	return err
}

// stop closes the rig's listener and every connection, if it is up.
func (m *Miner) stop() error {
	m.mu.Lock()
	srv, ln := m.srv, m.ln
	m.srv, m.ln = nil, nil
	m.mu.Unlock()
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

// listenLocked opens the rig's listener and serves it. m.mu is held.
func (m *Miner) listenLocked() error {
	f := m.fleet
	var ln net.Listener
	var err error
	for try := 0; try < 5; try++ { // the port may linger for a moment after a close
		if ln, err = net.Listen("tcp", m.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		m.listenErr = err
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

// selfSigned makes the fleet's certificate and the matching client configuration.
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
