package antweb

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// Fleet is a running set of simulated Antminers: a miners/sim fleet for the API and one web server per
// miner. Its methods are safe for concurrent use.
type Fleet struct {
	cfg    Config
	api    *sim.Fleet
	web    *httpsim.Fleet
	miners []*Miner
	byID   map[string]*Miner
}

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
	wc := cfg.web()
	web, err := httpsim.NewFleet(wc, httpsim.Options{
		Handler: routes(), IsWrite: isWrite, BadBody: badBody, FormBodies: true,
		Malformed: `{"minertype":"Antminer S19","macaddr":"02:00:00`, ErrClosed: ErrClosed, ErrUnknownMiner: ErrUnknownMiner,
	})
	if err != nil {
		_ = api.Close()
		return nil, err
	}
	f := &Fleet{cfg: cfg, api: api, web: web, byID: make(map[string]*Miner, cfg.Count)}
	for i, sm := range api.Miners() {
		host, _, _ := net.SplitHostPort(sm.Addr()) // both sides of a miner share its address
		var op [8]byte
		_, _ = rand.Read(op[:])
		m := &Miner{
			fleet:     f,
			id:        sm.ID(),
			api:       sm,
			drv:       cgminer.New(&pb.Device{MinerId: sm.ID(), Address: sm.Addr()}, cgminer.Config{Clock: cfg.Clock}),
			user:      cfg.Username,
			pass:      cfg.Password,
			opaque:    hex.EncodeToString(op[:]),
			hostname:  fmt.Sprintf("Antminer-%04d", i),
			workMode:  modeNormal,
			passwords: map[string]string{},
			fanPWM:    -1,
			nonces:    map[string]*nonceState{},
		}
		m.web = web.Add(m.id, wc.ListenAddr(i, host), m)
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
	}
	if err := web.Listen(); err != nil {
		_ = f.Close()
		return nil, err
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
func (f *Fleet) WriteLog() []WriteRecord { return records(f.web.Writes()) }

// SetFault sets the web-side fault of miner id (API-side faults: Fleet.API().Miner(id).SetFault).
func (f *Fleet) SetFault(id string, fault Fault) error { return f.web.SetFault(id, fault) }

// ClientTLS returns a client configuration trusting the fleet's certificate, or nil without Config.TLS.
func (f *Fleet) ClientTLS() *tls.Config { return f.web.ClientTLS() }

// Close stops both sides of every miner and waits for every goroutine. It is safe to call more than once.
func (f *Fleet) Close() error {
	return f.web.Close(func() error {
		errs := []error{f.api.Close()}
		for _, m := range f.miners {
			errs = append(errs, m.drv.Close())
		}
		return errors.Join(errs...)
	})
}

// badBody answers a request body that could not be read or is too large.
func badBody(w http.ResponseWriter, _ error) {
	stats(w, http.StatusRequestEntityTooLarge, "error", "E413", "request body unreadable or too large")
}
