package braiins

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
)

// services implements the gRPC subset for one miner; the interceptor has authenticated every call but
// Login.
type services struct {
	bospb.UnimplementedAuthenticationServiceServer
	bospb.UnimplementedActionsServiceServer
	bospb.UnimplementedPerformanceServiceServer
	bospb.UnimplementedPoolServiceServer
	bospb.UnimplementedMinerServiceServer
	m *Miner
}

// maxPools is how many pools the CGMiner side holds.
const maxPools = 3

func (s *services) Login(_ context.Context, r *bospb.LoginRequest) (*bospb.LoginResponse, error) {
	tok, ttl, ok := s.m.login(r.GetUsername(), r.GetPassword())
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "invalid username or password")
	}
	return &bospb.LoginResponse{Token: tok, TimeoutS: uint32(ttl.Seconds())}, nil
}

// do runs one write: write-through when spec is not nil, logged either way.
func (s *services) do(ctx context.Context, method string, req any, spec *pb.CommandSpec) error {
	if spec != nil {
		if err := s.m.wt.Execute(spec); err != nil {
			s.m.logWrite(ctx, method, paramsOf(req), "internal: "+err.Error())
			return status.Error(codes.Internal, "bosminer did not take the command")
		}
	}
	s.m.logWrite(ctx, method, paramsOf(req), "")
	return nil
}

func (s *services) PauseMining(ctx context.Context, r *bospb.PauseMiningRequest) (*bospb.PauseMiningResponse, error) {
	already := s.m.api.Snapshot().Paused
	if err := s.do(ctx, "ActionsService/PauseMining", r, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}); err != nil {
		return nil, err
	}
	return &bospb.PauseMiningResponse{AlreadyPaused: already}, nil
}

func (s *services) ResumeMining(ctx context.Context, r *bospb.ResumeMiningRequest) (*bospb.ResumeMiningResponse, error) {
	already := !s.m.api.Snapshot().Paused
	if err := s.do(ctx, "ActionsService/ResumeMining", r, &pb.CommandSpec{Action: pb.Action_ACTION_START_MINING}); err != nil {
		return nil, err
	}
	return &bospb.ResumeMiningResponse{AlreadyMining: already}, nil
}

func (s *services) Reboot(ctx context.Context, r *bospb.RebootRequest) (*bospb.RebootResponse, error) {
	if err := s.do(ctx, "ActionsService/Reboot", r, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}); err != nil {
		return nil, err
	}
	s.m.mu.Lock()
	s.m.locating = false
	s.m.mu.Unlock()
	return &bospb.RebootResponse{}, nil
}

func (s *services) SetLocateDeviceStatus(ctx context.Context, r *bospb.SetLocateDeviceStatusRequest) (*bospb.LocateDeviceStatusResponse, error) {
	s.m.mu.Lock()
	s.m.locating = r.GetEnable()
	s.m.mu.Unlock()
	_ = s.do(ctx, "ActionsService/SetLocateDeviceStatus", r, nil)
	return &bospb.LocateDeviceStatusResponse{Enabled: r.GetEnable()}, nil
}

// Power target bounds the simulated firmware accepts, watts.
const (
	minPowerTargetW = 100
	maxPowerTargetW = 10000
)

func (s *services) SetPowerTarget(ctx context.Context, r *bospb.SetPowerTargetRequest) (*bospb.SetPowerTargetResponse, error) {
	w := r.GetPowerTarget().GetWatt()
	if w < minPowerTargetW || w > maxPowerTargetW {
		s.m.logWrite(ctx, "PerformanceService/SetPowerTarget", paramsOf(r), "power target out of range")
		return nil, status.Errorf(codes.InvalidArgument, "power target %d W is outside %d..%d W", w, minPowerTargetW, maxPowerTargetW)
	}
	s.m.mu.Lock()
	s.m.powerTargetW = w
	s.m.mu.Unlock()
	_ = s.do(ctx, "PerformanceService/SetPowerTarget", r, nil)
	return &bospb.SetPowerTargetResponse{PowerTarget: &bospb.Power{Watt: w}}, nil
}

func (s *services) SetPoolGroups(ctx context.Context, r *bospb.SetPoolGroupsRequest) (*bospb.SetPoolGroupsResponse, error) {
	var pools []*pb.Pool
	for _, g := range r.GetPoolGroups() {
		for _, p := range g.GetPools() {
			if p.Enabled != nil && !p.GetEnabled() {
				continue
			}
			pools = append(pools, &pb.Pool{Url: p.GetUrl(), User: p.GetUser(), Password: p.GetPassword(), Priority: int32(len(pools))})
		}
	}
	bad := ""
	switch {
	case len(pools) == 0:
		bad = "no enabled pool"
	case len(pools) > maxPools:
		bad = "too many pools"
	}
	for _, p := range pools {
		if strings.TrimSpace(p.GetUrl()) == "" {
			bad = "pool without url"
		}
	}
	if bad != "" {
		s.m.logWrite(ctx, "PoolService/SetPoolGroups", paramsOf(r), bad)
		return nil, status.Error(codes.InvalidArgument, bad)
	}
	if err := s.do(ctx, "PoolService/SetPoolGroups", r, &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools}); err != nil {
		return nil, err
	}
	groups := make([]*bospb.PoolGroupConfiguration, 0, len(r.GetPoolGroups()))
	for _, g := range r.GetPoolGroups() {
		groups = append(groups, proto.Clone(g).(*bospb.PoolGroupConfiguration))
	}
	s.m.mu.Lock()
	s.m.poolGroups = groups
	s.m.mu.Unlock()
	out := &bospb.SetPoolGroupsResponse{}
	for _, g := range groups {
		c := proto.Clone(g).(*bospb.PoolGroupConfiguration)
		for _, p := range c.GetPools() {
			p.Password = nil // the firmware does not echo passwords
		}
		out.PoolGroups = append(out.PoolGroups, c)
	}
	return out, nil
}

func (s *services) GetErrors(context.Context, *bospb.GetErrorsRequest) (*bospb.GetErrorsResponse, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	out := &bospb.GetErrorsResponse{}
	for _, e := range s.m.errs {
		out.Errors = append(out.Errors, &bospb.MinerError{TimestampS: e.Since.Unix(), Message: e.Message, Component: e.Component})
	}
	return out, nil
}
