package braiins

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/internal/stateside"
)

// Fault makes a miner's gRPC replies hostile.
type Fault int

const (
	// FaultNone: the miner behaves.
	FaultNone Fault = iota
	// FaultGarbage: reply messages are bytes that are not protobuf.
	FaultGarbage
	// FaultOversized: reply messages carry Config.HugeReplyBytes of unknown-field padding.
	FaultOversized
	// FaultUnavailable: every call fails with codes.Unavailable.
	FaultUnavailable
)

// Miner is one simulated Braiins OS miner.
type Miner struct {
	fleet *Fleet
	id    string
	api   *sim.Miner
	srv   *grpc.Server
	addr  string

	wt *stateside.Writer // the CGMiner side, through which bosminer's API front end drives its miner

	mu            sync.Mutex
	user          string
	password      string
	tokens        map[string]tokenInfo
	loginFailures int
	powerTargetW  uint64
	locating      bool
	errs          []Error
	poolGroups    []*bospb.PoolGroupConfiguration
	fault         Fault
	writes        []Write
}

type tokenInfo struct{ expires time.Time }

// Error is one error record the miner reports through MinerService.GetErrors.
type Error struct {
	Since     time.Time
	Message   string
	Component string
}

// Write is one write call a miner received, accepted or not.
type Write struct {
	MinerID string
	At      time.Time // Config.Clock
	Method  string    // e.g. "ActionsService/PauseMining"
	// Params are the request's fields; passwords are "***".
	Params   map[string]string
	Remote   string
	Accepted bool
	// Reason says why the call was refused (authentication, invalid argument).
	Reason string
}

// State is what a miner holds now.
type State struct {
	API          sim.State // the CGMiner side
	PowerTargetW uint64    // 0 until SetPowerTarget
	Locating     bool
	PoolGroups   []*bospb.PoolGroupConfiguration // as last set, passwords included
	Errors       []Error
	Rebooting    bool
}

// ID returns the miner id.
func (m *Miner) ID() string { return m.id }

// Addr returns the gRPC API's host:port.
func (m *Miner) Addr() string { return m.addr }

// API returns the CGMiner side.
func (m *Miner) API() *sim.Miner { return m.api }

// Snapshot returns the miner's state now.
func (m *Miner) Snapshot() State {
	api := m.api.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	groups := make([]*bospb.PoolGroupConfiguration, 0, len(m.poolGroups))
	for _, g := range m.poolGroups {
		groups = append(groups, proto.Clone(g).(*bospb.PoolGroupConfiguration))
	}
	return State{API: api, PowerTargetW: m.powerTargetW, Locating: m.locating, PoolGroups: groups,
		Errors: slices.Clone(m.errs), Rebooting: api.Rebooting}
}

// SetPassword changes the login password; tokens issued before are void.
func (m *Miner) SetPassword(pw string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.password = pw
	clear(m.tokens)
}

// LoginFailures returns how many logins were refused.
func (m *Miner) LoginFailures() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loginFailures
}

// SetErrors replaces the error records the miner reports.
func (m *Miner) SetErrors(errs []Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = slices.Clone(errs)
}

// SetFault sets the miner's gRPC fault; FaultNone clears it.
func (m *Miner) SetFault(f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = f
}

func (m *Miner) currentFault() Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fault
}

// WriteLog returns a copy of the miner's write log.
func (m *Miner) WriteLog() []Write {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.writes)
}

func (m *Miner) logWrite(ctx context.Context, method string, params map[string]string, reason string) {
	w := Write{MinerID: m.id, At: m.fleet.cfg.Clock.Now(), Method: method, Params: params, Accepted: reason == "", Reason: reason}
	if p, ok := peer.FromContext(ctx); ok {
		w.Remote = p.Addr.String()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes = append(m.writes, w)
}

// login checks credentials and issues a token.
func (m *Miner) login(user, password string) (string, time.Duration, bool) {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if user != m.user || password != m.password {
		m.loginFailures++
		return "", 0, false
	}
	if len(m.tokens) >= maxTokens {
		var oldest string
		for k, t := range m.tokens {
			if oldest == "" || t.expires.Before(m.tokens[oldest].expires) {
				oldest = k
			}
		}
		delete(m.tokens, oldest)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	m.tokens[tok] = tokenInfo{expires: now.Add(m.fleet.cfg.TokenTTL)}
	return tok, m.fleet.cfg.TokenTTL, true
}

// checkToken returns why the call's token is refused, or "".
func (m *Miner) checkToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || vals[0] == "" {
		return "no authorization token"
	}
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[vals[0]]
	switch {
	case !ok:
		return "unknown token"
	case !now.Before(t.expires):
		delete(m.tokens, vals[0])
		return "token expired"
	}
	return ""
}

const loginMethod = "/braiins.bos.v1.AuthenticationService/Login"

// readMethods need a token but are not writes.
var readMethods = map[string]bool{"/braiins.bos.v1.MinerService/GetErrors": true}

// intercept applies faults, the reboot window and authentication to every call.
func (m *Miner) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m.currentFault() == FaultUnavailable {
		return nil, status.Error(codes.Unavailable, "miner unavailable (simulated fault)")
	}
	if m.api.Snapshot().Rebooting {
		return nil, status.Error(codes.Unavailable, "miner is rebooting")
	}
	if info.FullMethod == loginMethod {
		return handler(ctx, req)
	}
	if reason := m.checkToken(ctx); reason != "" {
		if !readMethods[info.FullMethod] {
			m.logWrite(ctx, shortMethod(info.FullMethod), paramsOf(req), reason)
		}
		return nil, status.Error(codes.Unauthenticated, reason)
	}
	return handler(ctx, req)
}

func shortMethod(full string) string {
	const prefix = "/braiins.bos.v1."
	if len(full) > len(prefix) {
		return full[len(prefix):]
	}
	return full
}

// paramsOf flattens a request for the write log, passwords masked.
func paramsOf(req any) map[string]string {
	out := map[string]string{}
	switch r := req.(type) {
	case *bospb.SetPowerTargetRequest:
		out["power_target_w"] = fmt.Sprint(r.GetPowerTarget().GetWatt())
		out["save_action"] = r.GetSaveAction().String()
	case *bospb.SetLocateDeviceStatusRequest:
		out["enable"] = fmt.Sprint(r.GetEnable())
	case *bospb.SetPoolGroupsRequest:
		for i, g := range r.GetPoolGroups() {
			out[fmt.Sprintf("group.%d.name", i)] = g.GetName()
			for j, p := range g.GetPools() {
				k := fmt.Sprintf("group.%d.pool.%d.", i, j)
				out[k+"url"], out[k+"user"] = p.GetUrl(), p.GetUser()
				if p.Password != nil {
					out[k+"password"] = "***"
				}
			}
		}
	}
	return out
}

// faultCodec is the proto codec, with the miner's reply faults applied to what the server sends.
type faultCodec struct{ m *Miner }

func (faultCodec) Name() string { return "proto" }

func (c faultCodec) Marshal(v any) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("braiins sim: cannot marshal %T", v)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	switch c.m.currentFault() {
	case FaultGarbage:
		return []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, nil // a length that runs past the end
	case FaultOversized:
		b = protowire.AppendTag(b, 1000, protowire.BytesType)
		b = protowire.AppendBytes(b, make([]byte, c.m.fleet.cfg.HugeReplyBytes))
	}
	return b, nil
}

func (faultCodec) Unmarshal(data []byte, v any) error {
	msg, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("braiins sim: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, msg)
}
