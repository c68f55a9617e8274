package discovery

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/antminer"
)

// Paths probed on web ports.
const (
	pathPairingInfo = "/api/v1/pairing/info"         // Proto rig, unauthenticated (MDK spec)
	pathSystem      = "/api/v1/system"               // Proto rig, unauthenticated (MDK spec)
	pathSystemInfo  = "/cgi-bin/get_system_info.cgi" // Antminer, digest-protected
)

// newTransport is one scan's HTTP transport: no proxy (miners sit on the site LAN), bounded headers, no
// transparent decompression (a small gzip body must not become a large one), one idle connection per host
// so an address's second request reuses its first connection. The scan closes it when done.
func newTransport(cfg Config, dialer *net.Dialer) *http.Transport {
	tc := cfg.TLS
	if tc == nil {
		// Discovery reads only what a device says about itself; see Config.TLS.
		tc = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // see Config.TLS
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    cfg.ProbeTimeout,
		ResponseHeaderTimeout:  cfg.ProbeTimeout,
		MaxIdleConns:           cfg.Concurrency,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        5 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
		DisableCompression:     true,
	}
}

// webReply is one answered request, body bounded.
type webReply struct {
	status int
	header http.Header
	body   []byte
}

// probeWeb identifies what serves HTTP on addr:port: a Proto rig by its unauthenticated pairing info, an
// Antminer by the digest challenge of its CGI (and, with credentials, its system info).
func (r *run) probeWeb(ctx context.Context, addr netip.Addr, port int) webEvidence {
	ev := webEvidence{port: port, tls: slices.Contains(r.ports.TLS, port)}
	scheme := "http"
	if ev.tls {
		scheme = "https"
	}
	base := url.URL{Scheme: scheme, Host: netip.AddrPortFrom(addr, uint16(port)).String()}
	wantProto := r.req.wants(pb.Protocol_PROTOCOL_PROTO) && slices.Contains(r.ports.Proto, port)
	wantAnt := r.req.wants(pb.Protocol_PROTOCOL_ANTMINER) && slices.Contains(r.ports.AntminerWeb, port)
	var seen []string // what the port answered, for the not-a-miner error

	if wantProto {
		rep, err := r.get(ctx, base, pathPairingInfo)
		if err != nil {
			ev.err = err
			return ev
		}
		switch {
		case rep.status == http.StatusOK:
			info, err := parsePairingInfo(rep)
			if err == nil {
				r.protoSystem(ctx, base, info)
				ev.proto = info
				return ev
			}
			if errors.Is(err, ErrHostile) {
				ev.err = err
				return ev
			}
			seen = append(seen, reason(err))
		case rep.status == http.StatusUnauthorized && antminerRealm(rep.header) != "":
			if !wantAnt {
				ev.err = fmt.Errorf("an Antminer web CGI (digest realm %q): %w", antminerRealm(rep.header), ErrNotMiner)
				return ev
			}
			ev.ant = r.antminerInfo(ctx, addr, base)
			return ev
		default:
			if err := redirectErr(base, rep); errors.Is(err, ErrHostile) {
				ev.err = err
				return ev
			} else if err != nil {
				seen = append(seen, fmt.Sprintf("GET %s: %v", pathPairingInfo, err))
				break
			}
			seen = append(seen, fmt.Sprintf("GET %s: HTTP %d", pathPairingInfo, rep.status))
		}
	}
	if wantAnt {
		rep, err := r.get(ctx, base, pathSystemInfo)
		if err != nil {
			ev.err = err
			return ev
		}
		switch {
		case rep.status == http.StatusUnauthorized:
			if antminerRealm(rep.header) != "" {
				ev.ant = r.antminerInfo(ctx, addr, base)
				return ev
			}
			seen = append(seen, fmt.Sprintf("GET %s: HTTP 401 without an Antminer digest challenge (%s)", pathSystemInfo,
				snippet([]byte(strings.Join(rep.header.Values("WWW-Authenticate"), ", ")))))
		case rep.status == http.StatusOK:
			// Firmware with the web password switched off answers the CGI directly.
			info, err := parseSystemInfo(rep)
			if err == nil {
				ev.ant = info
				return ev
			}
			if errors.Is(err, ErrHostile) {
				ev.err = err
				return ev
			}
			seen = append(seen, reason(err))
		default:
			if err := redirectErr(base, rep); errors.Is(err, ErrHostile) {
				ev.err = err
				return ev
			} else if err != nil {
				seen = append(seen, fmt.Sprintf("GET %s: %v", pathSystemInfo, err))
				break
			}
			seen = append(seen, fmt.Sprintf("GET %s: HTTP %d", pathSystemInfo, rep.status))
		}
	}
	ev.err = fmt.Errorf("an HTTP server, but neither a Proto rig nor an Antminer (%s): %w", strings.Join(seen, "; "), ErrNotMiner)
	return ev
}

// get sends one GET within ProbeTimeout and reads the reply, bounded. Connection failures are errSilent;
// a stalled, oversized or cut-off reply is ErrHostile; something that is not HTTP is ErrNotMiner.
func (r *run) get(ctx context.Context, base url.URL, path string) (*webReply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	u := base
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v: %w", path, err, ErrNotMiner)
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")
	req.Header.Set("User-Agent", "hashfleet-discovery")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, classifyHTTPErr(path, base.Scheme, r.cfg.ProbeTimeout, err)
	}
	defer resp.Body.Close()
	limit := r.cfg.MaxReplyBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: reply of %d bytes exceeds %d: %w", path, resp.ContentLength, limit, ErrHostile)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case int64(len(body)) > limit:
		return nil, fmt.Errorf("GET %s: reply exceeds %d bytes: %w", path, limit, ErrHostile)
	case err != nil && isTimeout(err):
		return nil, fmt.Errorf("GET %s: reply not complete within %v (%d bytes read): %w", path, r.cfg.ProbeTimeout, len(body), ErrHostile)
	case err != nil:
		return nil, fmt.Errorf("GET %s: reply cut off after %d bytes (%v): %w", path, len(body), err, ErrHostile)
	}
	return &webReply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// classifyHTTPErr sorts a failed exchange: no connection (silent), a stall (hostile), or not HTTP at all.
func classifyHTTPErr(path, scheme string, timeout time.Duration, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("connect: %w: %w", errSilent, err)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("GET %s: speaks plain HTTP where %s was expected: %w", path, scheme, ErrNotMiner)
	}
	if isTimeout(err) {
		return fmt.Errorf("GET %s: no reply within %v: %w", path, timeout, ErrHostile)
	}
	if strings.Contains(err.Error(), "headers exceeded") {
		return fmt.Errorf("GET %s: %v: %w", path, unwrapURLErr(err), ErrHostile)
	}
	return fmt.Errorf("GET %s: not an HTTP reply (%v): %w", path, unwrapURLErr(err), ErrNotMiner)
}

func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// reason is err's text without the ErrNotMiner suffix, for a list of reasons inside one such error.
func reason(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+ErrNotMiner.Error())
}

// redirectErr describes a redirect, which discovery never follows: to another host it is hostile (a device
// pointing the scanner elsewhere); on the same host it is a web UI's login page, described without a
// sentinel for the not-a-miner error it ends up in. nil when rep is no redirect.
func redirectErr(base url.URL, rep *webReply) error {
	if rep.status < 300 || rep.status > 399 {
		return nil
	}
	loc := rep.header.Get("Location")
	next, err := base.Parse(loc)
	if err != nil || !strings.EqualFold(next.Host, base.Host) || next.Scheme != base.Scheme {
		return fmt.Errorf("HTTP %d redirect to %s (another host; not followed): %w", rep.status, snippet([]byte(loc)), ErrHostile)
	}
	return fmt.Errorf("HTTP %d redirect to %s (not followed)", rep.status, snippet([]byte(next.Path)))
}

// decodeObject parses a JSON object reply. A body that is plainly not JSON (HTML, text) is ErrNotMiner; one
// that starts as JSON and fails is ErrHostile.
func decodeObject(path string, rep *webReply, v any) error {
	b := bytes.TrimSpace(rep.body)
	if len(b) == 0 || b[0] != '{' {
		ct, _, _ := mime.ParseMediaType(rep.header.Get("Content-Type"))
		return fmt.Errorf("GET %s: HTTP %d, %q body %s is not JSON: %w", path, rep.status, ct, snippet(b), ErrNotMiner)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: invalid JSON (%v) in %s: %w", path, err, snippet(b), ErrHostile)
	}
	return nil
}

// parsePairingInfo reads a Proto rig's {"mac","cb_sn"}; both are required by the contract.
func parsePairingInfo(rep *webReply) (*webInfo, error) {
	var v struct {
		MAC    any `json:"mac"`
		Serial any `json:"cb_sn"`
	}
	if err := decodeObject(pathPairingInfo, rep, &v); err != nil {
		return nil, err
	}
	mac, serial := str(v.MAC), str(v.Serial)
	if mac == "" || serial == "" {
		return nil, fmt.Errorf("GET %s: JSON without mac and cb_sn: %w", pathPairingInfo, ErrNotMiner)
	}
	return &webInfo{mac: mac, serial: serial}, nil
}

// protoSystem adds model and firmware from GET /api/v1/system (unauthenticated); failures are notes.
func (r *run) protoSystem(ctx context.Context, base url.URL, info *webInfo) {
	rep, err := r.get(ctx, base, pathSystem)
	if err == nil && rep.status != http.StatusOK {
		err = fmt.Errorf("GET %s: HTTP %d", pathSystem, rep.status)
	}
	var v struct {
		SystemInfo struct {
			Model       string `json:"model"`
			ProductName string `json:"product_name"`
			OS          struct {
				Version string `json:"version"`
			} `json:"os"`
		} `json:"system-info"`
	}
	if err == nil {
		err = decodeObject(pathSystem, rep, &v)
	}
	if err != nil {
		info.notes = append(info.notes, "no model: "+err.Error())
		return
	}
	info.model = firstNonEmpty(v.SystemInfo.Model, v.SystemInfo.ProductName)
	info.firmware = v.SystemInfo.OS.Version
}

// antminerRealm returns the realm of a Digest challenge that looks like an Antminer's (stock firmware:
// "antMiner Configuration"), or "".
func antminerRealm(h http.Header) string {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Digest") {
			continue
		}
		i := strings.Index(strings.ToLower(params), "realm=")
		if i < 0 {
			continue
		}
		realm := strings.TrimPrefix(params[i+len("realm="):], `"`)
		if j := strings.IndexAny(realm, `",`); j >= 0 {
			realm = realm[:j]
		}
		if strings.Contains(strings.ToLower(realm), "antminer") {
			return cleanText(realm)
		}
	}
	return ""
}

// parseSystemInfo reads get_system_info.cgi as answered without authentication.
func parseSystemInfo(rep *webReply) (*webInfo, error) {
	var v struct {
		MinerType  string `json:"minertype"`
		MAC        string `json:"macaddr"`
		Hostname   string `json:"hostname"`
		Filesystem string `json:"system_filesystem_version"`
		Serial     string `json:"serinum"`
	}
	if err := decodeObject(pathSystemInfo, rep, &v); err != nil {
		return nil, err
	}
	if v.MinerType == "" && v.MAC == "" {
		return nil, fmt.Errorf("GET %s: JSON without minertype or macaddr: %w", pathSystemInfo, ErrNotMiner)
	}
	return &webInfo{model: v.MinerType, serial: v.Serial, mac: v.MAC, firmware: v.Filesystem, hostname: v.Hostname}, nil
}

// antminerInfo identifies an Antminer whose CGI asked for digest authentication: with credentials,
// get_system_info.cgi is read through the antminer driver's digest client, on this scan's transport.
func (r *run) antminerInfo(ctx context.Context, addr netip.Addr, base url.URL) *webInfo {
	info := &webInfo{}
	creds := r.req.Antminer
	if creds.Username == "" {
		info.notes = append(info.notes, "no MAC and no web serial: no Antminer web credentials given")
		return info
	}
	drv, err := antminer.New(&pb.Device{Address: netip.AddrPortFrom(addr, uint16(r.ports.CGMiner[0])).String(), WebAddress: base.Host},
		antminer.Config{Username: creds.Username, Password: creds.Password, Scheme: base.Scheme, TLS: r.transport.TLSClientConfig,
			RequestTimeout: r.cfg.ProbeTimeout, DialTimeout: r.cfg.ProbeTimeout, MaxBodyBytes: r.cfg.MaxReplyBytes,
			Clock: r.cfg.Clock, Transport: r.transport})
	if err != nil {
		info.notes = append(info.notes, "cannot read get_system_info.cgi: "+err.Error())
		return info
	}
	defer drv.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*r.cfg.ProbeTimeout) // challenge, then the signed request
	defer cancel()
	si, err := drv.SystemInfo(ctx)
	if err != nil {
		info.notes = append(info.notes, "get_system_info.cgi: "+err.Error())
		return info
	}
	return &webInfo{model: si.Model, serial: si.Serial, mac: si.MAC, firmware: si.Firmware, hostname: si.Hostname}
}
