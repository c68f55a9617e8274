package antminer

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// downloadLogs writes get_kernel_log.cgi's text to the file the node named.
func (d *Driver) downloadLogs(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	path := spec.GetParams()[miners.ParamLogsPath]
	if path == "" {
		return "", fmt.Errorf("download logs: no destination given by the node")
	}
	// A signed GET through the digest loop; the reply body is the log (bounded by the client's MaxBodyBytes).
	rep, err := d.rawGet(ctx, "/cgi-bin/get_kernel_log.cgi")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, rep, 0o600); err != nil {
		return "", fmt.Errorf("download logs: %w", err)
	}
	return fmt.Sprintf("%d bytes of kernel log", len(rep)), nil
}

// rawGet is a digest-authenticated GET whose body is returned as is (not JSON).
func (d *Driver) rawGet(ctx context.Context, path string) ([]byte, error) {
	u := d.base
	u.Path = path
	what := "GET " + path
	for attempt := 0; ; attempt++ {
		rep, err := d.web.Do(ctx, http.MethodGet, &u, nil, d.auth.authorization)
		if err != nil {
			return nil, err
		}
		if rep.Status == http.StatusUnauthorized {
			cs, _ := parseChallenges(rep.Header.Values("WWW-Authenticate"))
			c, ok := pick(cs)
			if !ok || attempt >= 2 {
				d.auth.ch = nil
				return nil, fmt.Errorf("%s: digest authentication as %q refused: %w: %w", what, d.cfg.Username, ErrBadCredentials, miners.ErrRefused)
			}
			d.auth.adopt(c)
			continue
		}
		d.auth.nextNonce(rep.Header.Get("Authentication-Info"))
		if rep.Status < 200 || rep.Status > 299 {
			return nil, statusErr(what, rep)
		}
		return rep.Body, nil
	}
}
