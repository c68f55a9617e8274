package braiins

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"google.golang.org/grpc"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/stateside"
)

// Fleet is a running set of simulated Braiins OS miners. Its methods are safe for concurrent use.
type Fleet struct {
	cfg    Config
	state  *stateside.Fleet // the CGMiner side; runs the Serve goroutine of every miner
	miners []*Miner
	byID   map[string]*Miner
}

// Start validates cfg, starts the CGMiner side (miners/sim) and one gRPC server per miner.
func Start(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	state, err := stateside.Start("braiins sim", sim.Config{Count: cfg.Count, Host: cfg.Host, Seed: cfg.Seed, Clock: cfg.Clock,
		RebootDuration: cfg.RebootDuration, IDPrefix: cfg.IDPrefix, PerMinerIP: cfg.PerMinerIP, BaseIP: cfg.BaseIP,
		Port: cfg.APIPort, Software: sim.SoftwareBOSminer})
	if err != nil {
		return nil, fmt.Errorf("braiins sim: start the CGMiner side: %w", err)
	}
	f := &Fleet{cfg: cfg, state: state, byID: make(map[string]*Miner, cfg.Count)}
	for _, sm := range state.Members() {
		m := &Miner{
			fleet:    f,
			id:       sm.API.ID(),
			api:      sm.API,
			wt:       sm.Writer,
			user:     cfg.Username,
			password: cfg.Password,
			tokens:   map[string]tokenInfo{},
		}
		f.miners = append(f.miners, m)
		f.byID[m.id] = m
		// both listeners of a miner share its address
		if err := f.serve(m, net.JoinHostPort(sm.Host, strconv.Itoa(cfg.GRPCPort))); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("braiins sim: start miner %s: %w", m.id, err)
		}
	}
	return f, nil
}

// serve starts m's gRPC server on addr.
func (f *Fleet) serve(m *Miner, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(faultCodec{m}), grpc.UnaryInterceptor(m.intercept))
	svc := &services{m: m}
	bospb.RegisterAuthenticationServiceServer(srv, svc)
	bospb.RegisterActionsServiceServer(srv, svc)
	bospb.RegisterPerformanceServiceServer(srv, svc)
	bospb.RegisterPoolServiceServer(srv, svc)
	bospb.RegisterMinerServiceServer(srv, svc)
	m.srv, m.addr = srv, ln.Addr().String()
	f.state.Go(func() { _ = srv.Serve(ln) })
	return nil
}

// Miners returns every miner in index order.
func (f *Fleet) Miners() []*Miner { return slices.Clone(f.miners) }

// Miner returns the miner with id, or nil.
func (f *Fleet) Miner(id string) *Miner { return f.byID[id] }

// API returns the CGMiner side, for its faults and write log.
func (f *Fleet) API() *sim.Fleet { return f.state.API() }

// Devices returns one Device per miner: Protocol BRAIINS, Address the CGMiner API, WebAddress the gRPC API.
func (f *Fleet) Devices() []*pb.Device {
	out := f.state.API().Devices()
	for i, d := range out {
		d.Protocol = pb.Protocol_PROTOCOL_BRAIINS
		d.WebAddress = f.miners[i].Addr()
		d.Model = "Braiins OS " + d.GetModel()
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

// Close stops every gRPC server and the CGMiner side and waits for every goroutine. It is safe to call more
// than once.
func (f *Fleet) Close() error {
	return f.state.Close(func() {
		for _, m := range f.miners {
			if m.srv != nil {
				m.srv.Stop()
			}
		}
	})
}
