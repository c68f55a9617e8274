package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// probeCGMiner asks the CGMiner API on addr:port for version+stats (one request per connection, as the API
// works) and reads model, firmware and serial from the reply. Firmware that cannot join commands gets two
// plain requests.
func (r *run) probeCGMiner(ctx context.Context, addr netip.Addr, port int) cgEvidence {
	ev := cgEvidence{port: port}
	hp := netip.AddrPortFrom(addr, uint16(port)).String()
	doc, err := r.cgRequest(ctx, hp, "version+stats")
	if err != nil {
		ev.err = err
		return ev
	}
	version, stats := section(doc, "version"), section(doc, "stats")
	if _, btminer := get(doc, "STATUS").(string); btminer && version == nil && stats == nil {
		return r.probeWhatsminer(ctx, hp, ev) // a plain string STATUS is btminer's API v2, not cgminer's
	}
	if version == nil && stats == nil {
		// Not a joined reply: firmware that cannot join answers with one STATUS (often E, "cannot be joined").
		if get(doc, "STATUS") == nil {
			ev.err = fmt.Errorf("JSON without a STATUS section: not a CGMiner API reply: %w", ErrNotMiner)
			return ev
		}
		if version, err = r.cgRequest(ctx, hp, "version"); err != nil {
			ev.err = err
			return ev
		}
		if stats, err = r.cgRequest(ctx, hp, "stats"); err != nil {
			stats = nil // version alone identifies the API; stats only adds the serial
		}
	}
	if version != nil && get(version, "STATUS") == nil && get(version, "VERSION") == nil {
		ev.err = fmt.Errorf("version reply without STATUS or VERSION: not a CGMiner API reply: %w", ErrNotMiner)
		return ev
	}
	ev.ok = true
	ev.model, ev.firmware, ev.serial = cgIdentity(version, stats)
	ev.bos = braiinsOS(version, stats)
	return ev
}

// cgRequest sends one command on a fresh connection within ProbeTimeout and parses the reply leniently:
// trailing NUL, bmminer's "}{" between STATS objects, any key case.
func (r *run) cgRequest(ctx context.Context, hostPort, command string) (map[string]any, error) {
	return r.apiRequest(ctx, hostPort, command, []byte(`{"command":"`+command+`"}`))
}

// apiRequest sends req, one JSON request named command in errors, as cgRequest does.
func (r *run) apiRequest(ctx context.Context, hostPort, command string, req []byte) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	conn, err := r.dialer.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("connect: %w: %w", errSilent, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) }) // cancellation ends the read
	defer stop()
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("send %s: %v: %w", command, err, ErrNotMiner)
	}
	buf, err := readCGReply(conn, r.cfg.MaxReplyBytes)
	switch {
	case err != nil && len(buf) == 0 && isTimeout(err):
		return nil, fmt.Errorf("accepted the connection but sent no reply to %q within %v: %w", command, r.cfg.ProbeTimeout, ErrHostile)
	case err != nil && len(buf) == 0:
		return nil, fmt.Errorf("closed the connection without a reply to %q (%v): %w", command, err, ErrNotMiner)
	case errors.Is(err, errTooLarge):
		return nil, fmt.Errorf("reply to %q exceeds %d bytes: %w", command, r.cfg.MaxReplyBytes, ErrHostile)
	case err != nil:
		return nil, fmt.Errorf("reply to %q cut off after %d bytes (%v): %w", command, len(buf), err, ErrHostile)
	}
	return parseCGReply(buf)
}

var errTooLarge = errors.New("reply too large")

// readCGReply reads until the peer closes, a NUL (bmminer ends replies with one) or a complete JSON value,
// bounded by limit.
func readCGReply(conn net.Conn, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, errTooLarge
			}
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := conn.Read(buf[len(buf):min(cap(buf), int(limit)+1)])
		chunk := buf[len(buf) : len(buf)+n]
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			return buf[:len(buf)-n+i], nil
		}
		if n > 0 && bytes.HasSuffix(bytes.TrimRight(buf, " \t\r\n"), []byte("}")) && json.Valid(buf) {
			return buf, nil
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// parseCGReply decodes a CGMiner reply, repairing what firmware gets wrong.
func parseCGReply(buf []byte) (map[string]any, error) {
	b := bytes.TrimSpace(bytes.TrimRight(buf, "\x00"))
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("replied %s: not a CGMiner API reply: %w", snippet(b), ErrNotMiner)
	}
	var doc map[string]any
	err := unmarshalNumber(b, &doc)
	if err != nil {
		// bmminer on some Antminers omits the comma between STATS objects.
		err = unmarshalNumber(bytes.ReplaceAll(b, []byte("}{"), []byte("},{")), &doc)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON (%v) in %s: %w", err, snippet(b), ErrHostile)
	}
	return doc, nil
}

func unmarshalNumber(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// section returns the reply to command inside a joined reply: {"version":[{...}],"stats":[{...}]}.
func section(doc map[string]any, command string) map[string]any {
	if objs := objects(get(doc, command)); len(objs) > 0 {
		return objs[0]
	}
	return nil
}

// cgIdentity reads model (Type), firmware (CompileTime, else the miner software's version) and a serial from
// the VERSION and STATS sections. CGMiner has no serial field of its own; the first of serial, SN,
// serial_no and miner_id (bmminer's unit id) found is used.
func cgIdentity(version, stats map[string]any) (model, firmware, serial string) {
	var entries []map[string]any
	entries = append(entries, objects(get(version, "VERSION"))...)
	entries = append(entries, objects(get(stats, "STATS"))...)
	for _, e := range entries {
		if model == "" {
			model = str(get(e, "Type"))
		}
		if firmware == "" {
			firmware = str(get(e, "CompileTime"))
		}
		if serial == "" {
			serial = str(get(e, "serial", "SN", "serial_no", "miner_id"))
		}
	}
	if firmware == "" {
		for _, e := range entries {
			for _, k := range []string{"BMMiner", "CGMiner", "BOSminer", "BOSer", "LUXminer", "Miner"} {
				if v := str(get(e, k)); v != "" {
					return model, k + " " + v, serial
				}
			}
		}
	}
	return model, firmware, serial
}

// braiinsOS reports whether the API is Braiins OS's: bosminer (or BOSer) names itself in VERSION or STATS.
func braiinsOS(version, stats map[string]any) bool {
	for _, e := range append(objects(get(version, "VERSION")), objects(get(stats, "STATS"))...) {
		if str(get(e, "BOSminer", "BOSer")) != "" {
			return true
		}
	}
	return false
}

// get returns the first of names present in m, matching keys case-insensitively (firmware varies).
func get(m map[string]any, names ...string) any {
	if m == nil {
		return nil
	}
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v
		}
	}
	for _, n := range names {
		for k, v := range m {
			if strings.EqualFold(k, n) {
				return v
			}
		}
	}
	return nil
}

// objects returns the objects of a JSON array (or a lone object).
func objects(v any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		var out []map[string]any
		for _, e := range x {
			if o, ok := e.(map[string]any); ok {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}

// str renders a scalar as text ("" for objects, arrays and null).
func str(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// snippet quotes the start of a reply for an error message.
func snippet(b []byte) string {
	const n = 48
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
