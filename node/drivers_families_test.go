package node_test

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/braiins"
	bossim "github.com/hashfleet/hashfleet/miners/sim/braiins"
	wmsim "github.com/hashfleet/hashfleet/miners/sim/whatsminer"
	"github.com/hashfleet/hashfleet/miners/whatsminer"
)

// TestDriversWhatsminer: the node builds a Whatsminer driver for both API versions, opens the admin
// password sealed to it, and a write with it is accepted; without it the factory password is refused.
func TestDriversWhatsminer(t *testing.T) {
	f, err := wmsim.Start(wmsim.Config{Count: 1, Clock: clock.NewFake(time.Now()), Password: "wm-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, v := range []int{2, 3} {
		h := newDrivers(t)
		h.d.Whatsminer.APIVersion = v
		dev := f.Devices(v)[0]
		h.owned[dev.GetMinerId()] = true

		plain, err := h.d.New(dev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Execute(pairCtx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000}); err == nil {
			t.Fatalf("v%d: the factory password was accepted", v)
		}
		plain.Close()

		drv, err := h.d.New(h.withLogin(dev, "n1", "", "wm-secret"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := drv.(*whatsminer.Driver); !ok {
			t.Fatalf("v%d: driver %T", v, drv)
		}
		if _, err := drv.Execute(pairCtx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000 + float64(v)}); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if got := f.Miners()[0].Snapshot().PowerLimitW; got != 3000+v {
			t.Fatalf("v%d: limit %d", v, got)
		}
		if out := h.d.Pair(pairCtx(t), dev); out.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			t.Fatalf("v%d: pair %+v", v, out)
		}
		drv.Close()
	}
}

// TestDriversBraiins: the node builds a Braiins OS driver with the sealed login, and pairing tells a
// missing login from a wrong one.
func TestDriversBraiins(t *testing.T) {
	f, err := bossim.Start(bossim.Config{Count: 1, Clock: clock.NewFake(time.Now()), Password: "bos-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newDrivers(t)
	dev := f.Devices()[0]
	h.owned[dev.GetMinerId()] = true

	if out := h.d.Pair(pairCtx(t), dev); out.Code != pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS {
		t.Fatalf("pair without login: %+v", out)
	}
	if out := h.d.Pair(pairCtx(t), h.withLogin(dev, "n1", "root", "wrong")); out.Code != pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS {
		t.Fatalf("pair with a wrong login: %+v", out)
	}
	withLogin := h.withLogin(dev, "n1", "root", "bos-secret")
	if out := h.d.Pair(pairCtx(t), withLogin); out.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("pair: %+v", out)
	}
	drv, err := h.d.New(withLogin)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if _, ok := drv.(*braiins.Driver); !ok {
		t.Fatalf("driver %T", drv)
	}
	if _, err := drv.Execute(pairCtx(t), &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}); err != nil {
		t.Fatal(err)
	}
	tel, err := drv.Poll(pairCtx(t))
	if err != nil || tel.GetState() != pb.MinerState_MINER_STATE_STOPPED {
		t.Fatalf("poll %v %v", tel.GetState(), err)
	}
}
