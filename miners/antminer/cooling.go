package antminer

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// getCooling reads bitmain-fan-ctrl / bitmain-fan-pwm: automatic, manual at a speed, or fans off.
func (d *Driver) getCooling(ctx context.Context) (string, error) {
	conf, err := d.getConf(ctx)
	if err != nil {
		return "", err
	}
	ctrl, _ := conf["bitmain-fan-ctrl"].(bool)
	if !ctrl {
		return "cooling " + miners.CoolingAuto, nil
	}
	pwm, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(conf["bitmain-fan-pwm"])))
	if err != nil {
		return "", fmt.Errorf("get cooling: bitmain-fan-pwm %v: %w", conf["bitmain-fan-pwm"], miners.ErrMalformed)
	}
	if pwm == 0 {
		return "cooling " + miners.CoolingImmersion, nil
	}
	return fmt.Sprintf("cooling %s %d%%", miners.CoolingManual, pwm), nil
}

// setCooling writes the fan settings through set_miner_conf.cgi (read-modify-write).
func (d *Driver) setCooling(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	c, err := miners.CoolingOf(spec)
	if err != nil {
		return "", err
	}
	err = d.setConf(ctx, func(conf minerConf) {
		switch c.Mode {
		case miners.CoolingAuto:
			conf["bitmain-fan-ctrl"], conf["bitmain-fan-pwm"] = false, "100"
		case miners.CoolingManual:
			conf["bitmain-fan-ctrl"], conf["bitmain-fan-pwm"] = true, strconv.Itoa(c.PWM)
		case miners.CoolingImmersion:
			conf["bitmain-fan-ctrl"], conf["bitmain-fan-pwm"] = true, "0"
		}
	})
	if err != nil {
		return "", err
	}
	return "cooling set to " + c.Mode, nil
}
