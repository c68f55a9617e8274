package simtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// FirmwareSpec is an ACTION_FIRMWARE_UPDATE spec for the artifact name whose image img the node has
// fetched: img is written to a file in the test's temporary directory and handed over through
// miners.ParamFirmwarePath.
func FirmwareSpec(t *testing.T, name string, img []byte) *pb.CommandSpec {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE, Firmware: &pb.ArtifactRef{Name: name},
		Params: map[string]string{miners.ParamFirmwarePath: path}}
}
