package grains

import (
	"encoding/hex"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// validateFirmware: firmware_update names an image by sha256 and size; no other action carries one.
func validateFirmware(req CommandRequest) error {
	fw := req.Firmware
	if req.Action != pb.Action_ACTION_FIRMWARE_UPDATE {
		if fw != nil {
			return fmt.Errorf("%w: firmware is only valid with firmware_update", ErrInvalidCommand)
		}
		return nil
	}
	if fw == nil {
		return fmt.Errorf("%w: firmware_update needs firmware (an uploaded artifact's sha256)", ErrInvalidCommand)
	}
	if b, err := hex.DecodeString(fw.GetSha256()); err != nil || len(b) != 32 || hex.EncodeToString(b) != fw.GetSha256() {
		return fmt.Errorf("%w: firmware sha256 %q is not 64 lower-case hex digits", ErrInvalidCommand, fw.GetSha256())
	}
	if fw.GetSize() <= 0 {
		return fmt.Errorf("%w: firmware size must be positive", ErrInvalidCommand)
	}
	if len(fw.GetName()) > 200 {
		return fmt.Errorf("%w: firmware name longer than 200 bytes", ErrInvalidCommand)
	}
	return nil
}
