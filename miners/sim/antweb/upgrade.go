package antweb

import (
	"errors"
	"io"
	"net/http"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// MaxImageBytes bounds an upgrade.cgi upload.
const MaxImageBytes = 64 << 20

// UpgradeFault is how a miner answers a firmware upgrade.
type UpgradeFault int

const (
	// UpgradeOK installs the image and reboots.
	UpgradeOK UpgradeFault = iota
	// UpgradeRefuse answers an error and keeps the running firmware.
	UpgradeRefuse
	// UpgradeDegrade installs the image, reboots, and from then on hashes at DegradedFactor of nominal.
	UpgradeDegrade
)

// DegradedFactor is the hashrate multiplier UpgradeDegrade leaves.
const DegradedFactor = 0.4

// SetUpgradeFault sets how the next upgrades go.
func (m *Miner) SetUpgradeFault(f UpgradeFault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.upgradeFault = f
}

// upgrade is upgrade.cgi: multipart/form-data with the image in the "firmware" file field. The image is
// checked, installed, and the miner reboots into it.
func (m *Miner) upgrade(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxImageBytes)
	f, _, err := r.FormFile("firmware")
	if err != nil {
		refuse(w, r, http.StatusBadRequest, "U001", "multipart field \"firmware\" missing: "+err.Error())
		return
	}
	img, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		refuse(w, r, http.StatusRequestEntityTooLarge, "U001", "image unreadable: "+err.Error())
		return
	}
	version, err := sim.ParseFirmwareImage(img)
	if err != nil {
		refuse(w, r, http.StatusOK, "U002", "invalid firmware image: "+err.Error())
		return
	}
	m.mu.Lock()
	fault := m.upgradeFault
	m.mu.Unlock()
	if fault == UpgradeRefuse {
		refuse(w, r, http.StatusOK, "U003", "upgrade failed: flash write error")
		return
	}
	m.api.SetFirmware(version)
	if fault == UpgradeDegrade {
		m.api.SetHashrateFactor(DegradedFactor)
	}
	if err := m.execute(r.Context(), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}); err != nil && !errors.Is(err, r.Context().Err()) {
		refuse(w, r, http.StatusInternalServerError, "U004", "reboot into the new firmware failed: "+err.Error())
		return
	}
	m.web.Reboot(w, func(w http.ResponseWriter) {
		stats(w, http.StatusOK, "success", "U000", "upgrade to "+version+" done, rebooting")
	}, m.bootDone)
}
