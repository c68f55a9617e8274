package commission

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/discovery"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/miner"
)

func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }

func found(n int) []discovery.Found {
	out := make([]discovery.Found, n)
	for i := range out {
		out[i] = discovery.Found{Device: &pb.Device{MinerId: fmt.Sprintf("m-%d", i), Address: "10.0.0.1:4028"}}
	}
	return out
}

func targetErrs(n int) []discovery.TargetError {
	out := make([]discovery.TargetError, n)
	for i := range out {
		out[i] = discovery.TargetError{Err: discovery.ErrNotMiner}
	}
	return out
}

func TestReportsSplit(t *testing.T) {
	p := &discovery.ScanProgress{ScanID: "scan-1", Progress: discovery.Progress{Total: 100, Probed: 40, Found: 5, Errors: 7},
		Found: found(5), Errors: targetErrs(7)}
	rs := progressReports(p, 123, 2, 3)
	if len(rs) != 3 || len(rs[0].Found) != 2 || len(rs[2].Found) != 1 || len(rs[0].Errors) != 4 || len(rs[1].Errors) != 0 {
		t.Fatalf("progress parts: %d, %v", len(rs), rs)
	}
	for _, r := range rs {
		if r.State != "running" || r.Probed != 40 || r.StartedAtUnixMs != 123 {
			t.Fatalf("part %+v", r)
		}
	}
	// A finished scan repeats every device found, each part final; no errors (they were reported as they came).
	fin := &discovery.ScanStatus{ScanID: "scan-1", State: discovery.ScanDone, Progress: discovery.Progress{Total: 100, Probed: 100, Found: 5},
		Found: found(5), Errors: targetErrs(7), Started: time.UnixMilli(1), Finished: time.UnixMilli(2)}
	rs = finalReports(fin, 500, 3)
	if len(rs) != 1 || len(rs[0].Found) != 5 || rs[0].State != "done" || rs[0].FinishedAtUnixMs != 2 || len(rs[0].Errors) != 0 {
		t.Fatalf("final: %+v", rs)
	}
	// An empty scan still reports once.
	if rs := finalReports(&discovery.ScanStatus{ScanID: "s", State: discovery.ScanDone}, 500, 3); len(rs) != 1 {
		t.Fatalf("empty final: %d parts", len(rs))
	}
}

// probe collects what the commission actor answers the gate.
type probe struct {
	mu      sync.Mutex
	results []*pb.MinerResult
}

func (p *probe) Receive(ctx actor.Context) {
	if r, ok := ctx.Message().(*miner.Result); ok {
		p.mu.Lock()
		p.results = append(p.results, r.Result)
		p.mu.Unlock()
	}
}

func (p *probe) snapshot() []*pb.MinerResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.results)
}

func TestPairingBoundedAndIsolated(t *testing.T) {
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	var mu sync.Mutex
	inFlight, peak := 0, 0
	pair := func(ctx context.Context, d *pb.Device) (pb.ResultCode, string) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		time.Sleep(20 * time.Millisecond)
		switch d.GetMinerId() {
		case "boom":
			panic("driver bug")
		case "slow":
			<-ctx.Done()
			return pb.ResultCode_RESULT_CODE_FAILED, ctx.Err().Error()
		case "locked":
			return pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS, "give the login"
		}
		return pb.ResultCode_RESULT_CODE_SUCCEEDED, "paired"
	}
	cfg := DefaultConfig()
	cfg.PairConcurrency, cfg.PairTimeout = 3, 200*time.Millisecond
	ca := sys.Root.Spawn(Props(cfg, Env{NodeID: "n1", Pair: pair}))
	p := &probe{}
	gw := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *gate.ControlDispatch:
				ctx.Request(ca, m)
			default:
				p.Receive(ctx)
			}
		})
	}))
	devs := []*pb.Device{{MinerId: "boom"}, {MinerId: "slow"}, {MinerId: "locked"}}
	for i := range 7 {
		devs = append(devs, &pb.Device{MinerId: fmt.Sprintf("ok-%d", i)})
	}
	sys.Root.Send(gw, &gate.ControlDispatch{CommandID: "pair-1", Payload: &pb.CommandPayload{Pairing: &pb.PairingRequest{Devices: devs}}})
	actortest.WaitFor(t, 5*time.Second, "a result per device", func() bool { return len(p.snapshot()) == len(devs) })
	codes := map[string]pb.ResultCode{}
	for _, r := range p.snapshot() {
		codes[r.GetMinerId()] = r.GetCode()
	}
	if codes["boom"] != pb.ResultCode_RESULT_CODE_FAILED || codes["slow"] != pb.ResultCode_RESULT_CODE_FAILED ||
		codes["locked"] != pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS || codes["ok-6"] != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("codes %v", codes)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > 3 {
		t.Fatalf("%d pairings at once, PairConcurrency is 3", peak)
	}
	_ = sys.Root.StopFuture(ca).Wait()
	_ = sys.Root.StopFuture(gw).Wait()
}

func TestScanWithoutDiscoveryOrPair(t *testing.T) {
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	ca := sys.Root.Spawn(Props(DefaultConfig(), Env{NodeID: "n1"}))
	defer func() { _ = sys.Root.StopFuture(ca).Wait() }()
	for _, payload := range []*pb.CommandPayload{
		{Discovery: &pb.DiscoveryRequest{ScanId: "scan-1"}},
		{Pairing: &pb.PairingRequest{Devices: []*pb.Device{{MinerId: "a"}}}},
	} {
		res, err := sys.Root.RequestFuture(ca, &gate.ControlDispatch{CommandID: "c", Payload: payload}, time.Second).Result()
		r, ok := res.(*miner.Result)
		if err != nil || !ok || r.Result.GetCode() != pb.ResultCode_RESULT_CODE_UNSUPPORTED {
			t.Fatalf("%v: %v %v", payload, res, err)
		}
	}
}
