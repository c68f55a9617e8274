package proto_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/internal/simtest"
	"github.com/hashfleet/hashfleet/miners/sim"
)

func firmwareSpec(t *testing.T, img []byte) *pb.CommandSpec {
	t.Helper()
	return simtest.FirmwareSpec(t, "fw.swu", img)
}

// TestFirmwareUpdateThroughSystemUpdate: PUT /api/v1/system/update with the image as multipart "file"
// installs it; after the reboot firmware status and telemetry read the new version; a refusing rig keeps
// its firmware and the error carries its reason.
func TestFirmwareUpdateThroughSystemUpdate(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	exec(t, d, firmwareSpec(t, sim.FirmwareImage("2.0.2", 30<<10)))
	h.Clock.Advance(2 * time.Minute)
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_STATUS}); got != "firmware 2.0.2" {
		t.Fatalf("status %q", got)
	}
	if m.Snapshot().Firmware != "2.0.2" {
		t.Fatalf("rig firmware %q", m.Snapshot().Firmware)
	}
	m.RefuseUpdates("signature check failed")
	_, err := d.Execute(ctx(t), firmwareSpec(t, sim.FirmwareImage("2.0.3", 1024)))
	if !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), "signature check failed") {
		t.Fatalf("refused update: %v", err)
	}
	if _, err := d.Execute(ctx(t), firmwareSpec(t, []byte("not an image"))); err == nil {
		t.Fatal("invalid image accepted")
	}
	if m.Snapshot().Firmware != "2.0.2" {
		t.Fatalf("rig firmware changed to %q", m.Snapshot().Firmware)
	}
}
