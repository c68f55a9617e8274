package antminer

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// updatePassword rotates the web login through passwd.cgi. The new password comes from the node's opened
// copy of the spec (miners.ParamNewPassword); once the miner confirms, the driver logs in with it.
func (d *Driver) updatePassword(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	pw := spec.GetParams()[miners.ParamNewPassword]
	if pw == "" {
		return "", fmt.Errorf("update password: no new password opened for this miner")
	}
	in := map[string]string{"current_passwd": d.auth.pass, "new_passwd": pw, "new_passwd_ctrl": pw}
	if err := d.cgi(ctx, http.MethodPost, "/cgi-bin/passwd.cgi", in, nil); err != nil {
		return "", err
	}
	d.auth.pass, d.cfg.Password = pw, pw
	d.auth.ch = nil
	return "password changed", nil
}
