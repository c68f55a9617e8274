package antminer_test

import (
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

func coolingSpec(params map[string]string) *pb.CommandSpec {
	return &pb.CommandSpec{Action: pb.Action_ACTION_SET_COOLING, Params: params}
}

// TestCoolingModes: set_cooling writes the fan settings the miner then reports; get_cooling reads them.
func TestCoolingModes(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_COOLING}); got != "cooling auto" {
		t.Fatalf("stock: %q", got)
	}
	exec(t, d, coolingSpec(map[string]string{"cooling_mode": "manual", "fan_pwm": "70"}))
	if s := m.Snapshot(); !s.FanCtrl || s.FanPWM != 70 {
		t.Fatalf("manual: %+v", s)
	}
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_COOLING}); got != "cooling manual 70%" {
		t.Fatalf("manual: %q", got)
	}
	exec(t, d, coolingSpec(map[string]string{"cooling_mode": "immersion"}))
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_COOLING}); got != "cooling immersion" {
		t.Fatalf("immersion: %q", got)
	}
	exec(t, d, coolingSpec(map[string]string{"cooling_mode": "auto"}))
	if s := m.Snapshot(); s.FanCtrl {
		t.Fatalf("auto: %+v", s)
	}
	before := len(m.WriteLog())
	for _, bad := range []map[string]string{
		{"cooling_mode": "liquid-nitrogen"},
		{"cooling_mode": "manual"},
		{"cooling_mode": "manual", "fan_pwm": "101"},
		{"cooling_mode": "auto", "fan_pwm": "50"},
		nil,
	} {
		if _, err := d.Execute(ctx(t), coolingSpec(bad)); !errors.Is(err, miners.ErrRefused) {
			t.Errorf("%v: %v, want ErrRefused", bad, err)
		}
	}
	if len(m.WriteLog()) != before {
		t.Fatal("a refused cooling request reached the miner")
	}
}
