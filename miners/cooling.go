package miners

import (
	"fmt"
	"strconv"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Cooling modes (CommandSpec params cooling_mode, fan_pwm).
const (
	ParamCoolingMode = "cooling_mode"
	ParamFanPWM      = "fan_pwm"
	CoolingAuto      = "auto"      // the firmware controls the fans
	CoolingManual    = "manual"    // fixed fan speed, fan_pwm percent
	CoolingImmersion = "immersion" // fans off: the miner is immersion or hydro cooled
)

// Cooling is a set_cooling request.
type Cooling struct {
	Mode string
	PWM  int // percent, manual only
}

// CoolingOf reads and checks set_cooling's params.
func CoolingOf(spec *pb.CommandSpec) (Cooling, error) {
	c := Cooling{Mode: spec.GetParams()[ParamCoolingMode]}
	switch c.Mode {
	case CoolingAuto, CoolingImmersion:
		if _, set := spec.GetParams()[ParamFanPWM]; set {
			return c, fmt.Errorf("set cooling: fan_pwm is only valid with manual: %w", ErrRefused)
		}
	case CoolingManual:
		n, err := strconv.Atoi(spec.GetParams()[ParamFanPWM])
		if err != nil || n < 1 || n > 100 {
			return c, fmt.Errorf("set cooling: manual needs fan_pwm 1..100, got %q: %w", spec.GetParams()[ParamFanPWM], ErrRefused)
		}
		c.PWM = n
	default:
		return c, fmt.Errorf("set cooling: cooling_mode %q is not auto, manual or immersion: %w", c.Mode, ErrRefused)
	}
	return c, nil
}

// ParamLogsPath is where the node asks a driver to write the miner's logs for ACTION_DOWNLOAD_LOGS (a file
// the node created; like every node.* param, never taken from the cloud).
const ParamLogsPath = "node.logs_path"
