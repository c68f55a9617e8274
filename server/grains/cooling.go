package grains

import (
	"fmt"
	"strconv"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// validateCooling: set_cooling names auto, manual (fan_pwm 1..100) or immersion; no other action does.
func validateCooling(req CommandRequest) error {
	if req.Action != pb.Action_ACTION_SET_COOLING {
		if req.CoolingMode != "" || req.FanPWM != 0 {
			return fmt.Errorf("%w: cooling_mode and fan_pwm are only valid with set_cooling", ErrInvalidCommand)
		}
		return nil
	}
	switch req.CoolingMode {
	case "auto", "immersion":
		if req.FanPWM != 0 {
			return fmt.Errorf("%w: fan_pwm is only valid with cooling_mode manual", ErrInvalidCommand)
		}
	case "manual":
		if req.FanPWM < 1 || req.FanPWM > 100 {
			return fmt.Errorf("%w: cooling_mode manual needs fan_pwm 1..100, got %d", ErrInvalidCommand, req.FanPWM)
		}
	default:
		return fmt.Errorf("%w: cooling_mode %q is not auto, manual or immersion", ErrInvalidCommand, req.CoolingMode)
	}
	return nil
}

// coolingParams are set_cooling's spec params (nil for other actions).
func coolingParams(req CommandRequest) map[string]string {
	if req.Action != pb.Action_ACTION_SET_COOLING {
		return nil
	}
	p := map[string]string{"cooling_mode": req.CoolingMode}
	if req.CoolingMode == "manual" {
		p["fan_pwm"] = strconv.Itoa(req.FanPWM)
	}
	return p
}
