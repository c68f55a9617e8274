package miners

import (
	"fmt"
	"os"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// ParamFirmwarePath is the CommandSpec param through which the node hands a driver the firmware image it
// fetched and verified for ACTION_FIRMWARE_UPDATE. The node sets it on its own copy of the spec after the
// command's signature was checked, and clears it on every other spec: the cloud cannot name a local file.
const ParamFirmwarePath = "node.firmware_path"

// MaxFirmwareBytes bounds an image a driver reads into memory to send.
const MaxFirmwareBytes = 512 << 20

// FirmwareImage reads the image of a firmware update spec.
func FirmwareImage(spec *pb.CommandSpec) ([]byte, error) {
	path := spec.GetParams()[ParamFirmwarePath]
	if path == "" {
		return nil, fmt.Errorf("firmware update: no image fetched for this command (spec.firmware %q)", spec.GetFirmware().GetSha256())
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("firmware update: %w", err)
	}
	if fi.Size() > MaxFirmwareBytes {
		return nil, fmt.Errorf("firmware update: image of %d bytes exceeds %d", fi.Size(), MaxFirmwareBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("firmware update: %w", err)
	}
	return b, nil
}

// ParamNewPassword carries ACTION_UPDATE_PASSWORD's new login to the driver: the node opens the envelope
// sealed to it (purpose sealing.PurposeMinerLoginNew) into its own copy of the spec just before the write.
const ParamNewPassword = "node.new_password"
