package antminer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/internal/simtest"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
)

func firmwareSpec(t *testing.T, img []byte) *pb.CommandSpec {
	t.Helper()
	return simtest.FirmwareSpec(t, "fw.bin", img)
}

// TestFirmwareUpdateThroughUpgradeCGI: the image goes to upgrade.cgi as multipart with digest auth, the
// miner reboots into it, and firmware status reads the new version.
func TestFirmwareUpdateThroughUpgradeCGI(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	msg := exec(t, d, firmwareSpec(t, sim.FirmwareImage("2026.11.2-hf", 40<<10)))
	if !strings.Contains(msg, "2026.11.2-hf") {
		t.Fatalf("message %q", msg)
	}
	if s := m.Snapshot(); s.API.Firmware != "2026.11.2-hf" || s.Reboots != 1 {
		t.Fatalf("after upgrade: firmware %q, reboots %d", s.API.Firmware, s.Reboots)
	}
	h.Clock.Advance(2 * time.Minute) // the reboot ends
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_STATUS}); got != "firmware 2026.11.2-hf" {
		t.Fatalf("firmware status %q", got)
	}
	w := m.WriteLog()
	if len(w) == 0 || w[0].Path != "/cgi-bin/upgrade.cgi" || w[0].User == "" {
		t.Fatalf("write log %+v", w)
	}
}

// TestFirmwareUpdateRefusals: an image the miner refuses, an invalid image and a spec without a fetched
// image all fail with the reason, and the running firmware stays.
func TestFirmwareUpdateRefusals(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	before := m.Snapshot().API.Firmware
	m.SetUpgradeFault(antweb.UpgradeRefuse)
	if _, err := d.Execute(ctx(t), firmwareSpec(t, sim.FirmwareImage("9.9", 1024))); !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), "flash write error") {
		t.Fatalf("refused upgrade: %v", err)
	}
	m.SetUpgradeFault(antweb.UpgradeOK)
	if _, err := d.Execute(ctx(t), firmwareSpec(t, []byte("MZ this is not firmware"))); !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), "invalid firmware image") {
		t.Fatalf("invalid image: %v", err)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE}); err == nil || !strings.Contains(err.Error(), "no image fetched") {
		t.Fatalf("no image: %v", err)
	}
	if got := m.Snapshot().API.Firmware; got != before {
		t.Fatalf("firmware changed to %q", got)
	}
}
