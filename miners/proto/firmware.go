package proto

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// updatePath is the MDK API's firmware update: PUT uploads the image (multipart field "file") and installs it.
const updatePath = "/api/v1/system/update"

// firmwareUpdate uploads the image the node fetched for this command; the rig installs it and reboots.
func (d *Driver) firmwareUpdate(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	body, contentType, err := miners.FirmwareForm(spec, "file", "firmware.swu")
	if err != nil {
		return "", err
	}
	u := d.base
	u.Path = updatePath
	what := "PUT " + updatePath
	for attempt := 0; ; attempt++ {
		authz, usedJWT, err := d.authorization(ctx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		rep, err := d.web.Upload(ctx, http.MethodPut, &u, body, contentType, func(string, string) string { return authz })
		if err != nil {
			return "", err
		}
		if rep.Status == http.StatusUnauthorized && attempt == 0 {
			if usedJWT {
				d.preferPassword = d.cfg.Password != ""
			} else if err := d.reauthenticate(ctx); err != nil {
				return "", fmt.Errorf("%s: %w", what, err)
			}
			continue
		}
		if rep.Status < 200 || rep.Status > 299 {
			return "", fmt.Errorf("%w: %w", statusErr(what, rep), miners.ErrRefused)
		}
		d.infoAt = time.Time{} // the version changes with the reboot
		return "update accepted: " + rigMessage(rep.Body), nil
	}
}

// firmwareStatus reads the running firmware version (GET /api/v1/system).
func (d *Driver) firmwareStatus(ctx context.Context) (string, error) {
	d.infoAt = time.Time{} // read it now, not from the cache
	if err := d.refreshInfo(ctx); err != nil {
		return "", err
	}
	return "firmware " + d.info.firmware, nil
}
