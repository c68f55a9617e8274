package whatsminer

import (
	"crypto/rand"
	"fmt"
	"net"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/stateside"
)

// Fleet is a running set of simulated Whatsminers. Its methods are safe for concurrent use.
type Fleet struct {
	cfg    Config
	state  *stateside.Fleet // the state side; runs the accept loops and connection goroutines
	miners []*Miner
	byID   map[string]*Miner
}

// models are the names the simulated miners report, by index.
var models = [...]string{"M50S", "M30S+", "M60S", "M56S"}

// Start validates cfg, starts the state side (miners/sim) and both API listeners of every miner.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	state, err := stateside.Start("whatsminer sim", sim.Config{Count: cfg.Count, Host: cfg.Host, Seed: cfg.Seed, Clock: cfg.Clock,
		RebootDuration: cfg.RebootDuration, IDPrefix: cfg.IDPrefix, PerMinerIP: cfg.PerMinerIP, BaseIP: cfg.BaseIP,
		Port: cfg.StatePort})
	if err != nil {
		return nil, fmt.Errorf("whatsminer sim: start the state side: %w", err)
	}
	f := &Fleet{cfg: cfg, state: state, byID: make(map[string]*Miner, cfg.Count)}
	for i, sm := range state.Members() {
		m := &Miner{
			fleet:  f,
			id:     sm.API.ID(),
			api:    sm.API,
			wt:     sm.Writer,
			model:  models[i%len(models)],
			salt:   randomSalt(),
			v3salt: randomSalt(),
			tokens: map[string]tokenInfo{},
			conns:  map[net.Conn]struct{}{},
		}
		m.setPasswordLocked(cfg.Password)
		m.limitW = defaultLimit(sm.API.Snapshot().PowerW)
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
		// every listener of a miner shares its address
		if err := m.listen(sm.Host, cfg.PortV2, cfg.PortV3); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("whatsminer sim: start miner %s: %w", m.id, err)
		}
	}
	return f, nil
}

// defaultLimit is the factory power limit: a little above the nominal draw, in whole hundreds of watts.
func defaultLimit(powerW float64) int { return (int(powerW*1.15)/100 + 1) * 100 }

const saltChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomSalt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = saltChars[int(b[i])%len(saltChars)]
	}
	return string(b[:])
}

// Miners returns every miner in index order.
func (f *Fleet) Miners() []*Miner { return slices.Clone(f.miners) }

// Miner returns the miner with id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// API returns the state side, for its faults and write log.
func (f *Fleet) API() *sim.Fleet { return f.state.API() }

// Devices returns one Device per miner, Protocol WHATSMINER, Address the listener of apiVersion (2 or 3).
func (f *Fleet) Devices(apiVersion int) []*pb.Device {
	out := f.state.API().Devices()
	for i, d := range out {
		m := f.miners[i]
		d.Protocol = pb.Protocol_PROTOCOL_WHATSMINER
		d.Model = "WhatsMiner " + m.model
		d.Address = m.AddrV2()
		if apiVersion == 3 {
			d.Address = m.AddrV3()
		}
	}
	return out
}

// WriteLog returns every miner's writes, miner by miner.
func (f *Fleet) WriteLog() []Write {
	var out []Write
	for _, m := range f.miners {
		out = append(out, m.WriteLog()...)
	}
	return out
}

// Close stops every listener and connection, waits for every goroutine and stops the state side. It is
// safe to call more than once.
func (f *Fleet) Close() error {
	return f.state.Close(func() {
		for _, m := range f.miners {
			m.close()
		}
	})
}
