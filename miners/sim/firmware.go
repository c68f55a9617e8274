package sim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// FirmwareMagic starts every simulated firmware image: the first line of the file.
const FirmwareMagic = "HASHFLEET-SIM-FIRMWARE"

// FirmwareImage builds a simulated firmware image of version, padded to at least size bytes.
func FirmwareImage(version string, size int) []byte {
	b := []byte(FirmwareMagic + "\nversion=" + version + "\n")
	for len(b) < size {
		b = append(b, byte('A'+len(b)%26))
	}
	return b
}

// ErrBadImage: the bytes are not a simulated firmware image.
var ErrBadImage = errors.New("not a firmware image for this miner")

// ParseFirmwareImage reads the version from an image's header.
func ParseFirmwareImage(img []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(img[:min(len(img), 4096)]))
	if !sc.Scan() || sc.Text() != FirmwareMagic {
		return "", fmt.Errorf("%w: no %s header", ErrBadImage, FirmwareMagic)
	}
	if !sc.Scan() {
		return "", fmt.Errorf("%w: no version line", ErrBadImage)
	}
	v, ok := strings.CutPrefix(sc.Text(), "version=")
	if !ok || v == "" || len(v) > 64 {
		return "", fmt.Errorf("%w: bad version line", ErrBadImage)
	}
	return v, nil
}

// SetFirmware installs firmware version v (what the stats CompileTime and Snapshot report from now on).
func (m *Miner) SetFirmware(v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cond.firmware = v
}

func (m *Miner) firmwareLocked() string {
	if m.cond.firmware != "" {
		return m.cond.firmware
	}
	return m.model.compileTime
}
