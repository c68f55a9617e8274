package antminer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// upgradePath is stock firmware's upgrade CGI: multipart/form-data, the image in the "firmware" file field.
const upgradePath = "/cgi-bin/upgrade.cgi"

// firmwareUpdate sends the image the node fetched for this command to upgrade.cgi. The miner answers before
// it reboots into the new firmware.
func (d *Driver) firmwareUpdate(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	body, contentType, err := miners.FirmwareForm(spec, "firmware", "firmware.bin", "keep_settings", "1")
	if err != nil {
		return "", err
	}
	// A cheap signed GET first: the upload then goes out with a fresh nonce instead of being sent twice.
	if _, err := d.SystemInfo(ctx); err != nil {
		return "", err
	}
	u := d.base
	u.Path = upgradePath
	what := "POST " + upgradePath
	for attempt := 0; ; attempt++ {
		rep, err := d.web.Upload(ctx, http.MethodPost, &u, body, contentType, d.auth.authorization)
		if err != nil {
			return "", err
		}
		if rep.Status == http.StatusUnauthorized {
			cs, _ := parseChallenges(rep.Header.Values("WWW-Authenticate"))
			c, ok := pick(cs)
			if !ok || attempt >= 1 {
				d.auth.ch = nil
				return "", fmt.Errorf("%s: digest authentication as %q refused: %w: %w", what, d.cfg.Username, ErrBadCredentials, miners.ErrRefused)
			}
			d.auth.adopt(c)
			continue
		}
		d.auth.nextNonce(rep.Header.Get("Authentication-Info"))
		if rep.Status < 200 || rep.Status > 299 {
			return "", statusErr(what, rep)
		}
		var st struct {
			Stats string `json:"stats"`
			Code  string `json:"code"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(rep.Body, &st) == nil && strings.EqualFold(st.Stats, "error") {
			return "", fmt.Errorf("%s: firmware says %s %q: %w", what, st.Code, st.Msg, miners.ErrRefused)
		}
		if st.Msg != "" {
			return "upgrade accepted: " + st.Msg, nil
		}
		return "upgrade accepted", nil
	}
}

// firmwareStatus reads the running firmware version (system_filesystem_version).
func (d *Driver) firmwareStatus(ctx context.Context) (string, error) {
	info, err := d.SystemInfo(ctx)
	if err != nil {
		return "", err
	}
	return "firmware " + info.Firmware, nil
}
