package braiins

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock.NewFake(time.Now())
	}
	f, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAuthChecked(t *testing.T) {
	f := start(t, Config{Password: "pw"})
	m := f.Miners()[0]
	conn := dial(t, m.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	actions := bospb.NewActionsServiceClient(conn)
	if _, err := actions.PauseMining(ctx, &bospb.PauseMiningRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "forged")
	if _, err := actions.PauseMining(bad, &bospb.PauseMiningRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("forged token: %v", err)
	}
	auth := bospb.NewAuthenticationServiceClient(conn)
	if _, err := auth.Login(ctx, &bospb.LoginRequest{Username: "root", Password: "nope"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong password: %v", err)
	}
	rep, err := auth.Login(ctx, &bospb.LoginRequest{Username: "root", Password: "pw"})
	if err != nil || rep.GetToken() == "" || rep.GetTimeoutS() != 3600 {
		t.Fatalf("login %v %v", rep, err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "authorization", rep.GetToken())
	if _, err := actions.PauseMining(good, &bospb.PauseMiningRequest{}); err != nil {
		t.Fatal(err)
	}
	if !m.Snapshot().API.Paused {
		t.Fatal("pause did not reach the CGMiner side")
	}
	log := m.WriteLog()
	if len(log) != 3 || log[0].Reason != "no authorization token" || log[1].Reason != "unknown token" || !log[2].Accepted || m.LoginFailures() != 1 {
		t.Fatalf("log %+v, login failures %d", log, m.LoginFailures())
	}
}

func TestPerMinerIP(t *testing.T) {
	f := start(t, Config{Count: 2, PerMinerIP: true, BaseIP: "127.61.3.1", APIPort: 24028, GRPCPort: 25051})
	devs := f.Devices()
	if devs[1].GetAddress() != "127.61.3.2:24028" || devs[1].GetWebAddress() != "127.61.3.2:25051" || devs[1].GetProtocol() != pb.Protocol_PROTOCOL_BRAIINS {
		t.Fatalf("devices %v", devs)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Count: -1}, {APIPort: 4028}, {PerMinerIP: true, APIPort: 50051}, {TokenTTL: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
