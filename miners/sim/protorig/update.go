package protorig

import (
	"io"
	"net/http"

	"github.com/hashfleet/hashfleet/miners/sim"
)

// RefuseUpdates makes PUT /api/v1/system/update fail with reason ("" accepts updates again).
func (m *Miner) RefuseUpdates(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refuseUpdate = reason
}

// putUpdate is PUT /api/v1/system/update: a multipart upload of the image in field "file", installed at
// once; the rig reboots into it.
func (m *Miner) putUpdate(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "BAD_REQUEST", "multipart field \"file\" missing: "+err.Error())
		return
	}
	img, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "BAD_REQUEST", "image unreadable: "+err.Error())
		return
	}
	version, err := sim.ParseFirmwareImage(img)
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "INVALID_IMAGE", err.Error())
		return
	}
	m.mu.Lock()
	reason := m.refuseUpdate
	if reason == "" {
		m.rig.firmware = version
	}
	m.mu.Unlock()
	if reason != "" {
		errorResponse(w, http.StatusInternalServerError, "UPDATE_FAILED", reason)
		return
	}
	m.web.Reboot(w, func(w http.ResponseWriter) { message(w, http.StatusOK, "update "+version+" installed, rebooting") }, m.bootDone)
}
