package artifacts_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	srvart "github.com/hashfleet/hashfleet/server/artifacts"
)

// recordingDriver records the specs it is asked to run.
type recordingDriver struct{ specs []*pb.CommandSpec }

func (r *recordingDriver) Poll(context.Context) (*pb.Telemetry, error) { return &pb.Telemetry{}, nil }
func (r *recordingDriver) Close() error                                { return nil }
func (r *recordingDriver) Execute(_ context.Context, spec *pb.CommandSpec) (string, error) {
	r.specs = append(r.specs, spec)
	if p := spec.GetParams()[miners.ParamFirmwarePath]; p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		return string(b[:4]), nil
	}
	return "ok", nil
}

// TestWrapDriversFetchesFirmwareAndStripsNodeParams: a firmware update reaches the driver with the path of
// the image fetched for its command; node-local params the cloud put in a spec never reach the driver.
func TestWrapDriversFetchesFirmwareAndStripsNodeParams(t *testing.T) {
	c := startCloud(t, 2)
	img := []byte("IMG1 firmware bytes")
	m, err := c.svc.Store().Put(bytes.NewReader(img), "")
	if err != nil {
		t.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-fw", m.SHA256, srvart.ToNode)
	cl := newClient(t, c.addr, nil)
	inner := &recordingDriver{}
	drv, err := cl.WrapDrivers(func(*pb.Device) (miners.Driver, error) { return inner, nil })(&pb.Device{MinerId: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := miners.WithCommandID(context.Background(), "cmd-fw")
	msg, err := drv.Execute(ctx, &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE,
		Firmware: &pb.ArtifactRef{Sha256: m.SHA256, Size: m.Size},
		Params:   map[string]string{miners.ParamFirmwarePath: "/etc/shadow"}})
	if err != nil || msg != "IMG1" {
		t.Fatalf("firmware update: %q %v", msg, err)
	}
	if p := inner.specs[0].GetParams()[miners.ParamFirmwarePath]; p != cl.Path(m.SHA256) {
		t.Fatalf("driver got path %q", p)
	}
	hostile := map[string]string{miners.ParamFirmwarePath: "/etc/shadow", miners.ParamNewPassword: "x", miners.ParamLogsPath: "/etc/passwd", "keep": "1"}
	if _, err := drv.Execute(ctx, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT, Params: hostile}); err != nil {
		t.Fatal(err)
	}
	got := inner.specs[1].GetParams()
	if len(got) != 1 || got["keep"] != "1" {
		t.Fatalf("node params reached the driver: %v", got)
	}
	if hostile[miners.ParamFirmwarePath] != "/etc/shadow" {
		t.Fatal("the caller's spec was modified")
	}
	// A firmware update outside a command, or naming no image, is refused before any I/O.
	if _, err := drv.Execute(context.Background(), &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE, Firmware: &pb.ArtifactRef{Sha256: m.SHA256, Size: m.Size}}); err == nil || !strings.Contains(err.Error(), "no command id") {
		t.Fatalf("no command id: %v", err)
	}
}
