package main

import (
	"context"
	"strings"
	"testing"
)

// TestCtlDevicesArgs: malformed `ctl devices` and `node rotate-signing-key` invocations are refused before
// anything is contacted, each with a message naming what is missing.
func TestCtlDevicesArgs(t *testing.T) {
	for name, c := range map[string]struct {
		run  func(context.Context, []string) error
		args []string
		want string
	}{
		"no operation":     {ctlDevices, nil, "want transfer"},
		"unknown op":       {ctlDevices, []string{"move", "m1"}, "want transfer"},
		"no device":        {ctlDevices, []string{"transfer"}, "want transfer"},
		"flag as device":   {ctlDevices, []string{"transfer", "--to", "n2"}, "want transfer"},
		"no target":        {ctlDevices, []string{"transfer", "m1"}, "--to NODE_ID is required"},
		"rotate: no dir":   {runNodeRotateSigningKey, nil, "--data-dir is required"},
		"rotate: bad flag": {runNodeRotateSigningKey, []string{"--bogus"}, "bogus"},
	} {
		err := c.run(context.Background(), c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
