package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// MinerID derives a stable miner id from what a device says it is: "m-" and the MAC's twelve lowercase hex
// digits when the MAC is known ("m-0250520a0b0c"), else "s-" and the serial lowercased with anything but
// letters, digits, '-', '.' and '_' replaced by '_' ("s-hf3kq9..."), else "a-" and the address with ':'
// as '-' ("a-10.0.0.5-4028"). The prefixes keep the three kinds apart. The same device yields the same id on
// every scan as long as it reports the same MAC (or, lacking one, serial); an Antminer scanned without web
// credentials has no MAC, so give credentials for ids that survive a later scan with them.
func MinerID(d *pb.Device) string {
	if mac := normalizeMAC(d.GetMac()); mac != "" {
		return "m-" + strings.ReplaceAll(mac, ":", "")
	}
	if s := idSafe(d.GetSerial()); s != "" {
		return "s-" + s
	}
	return "a-" + strings.ReplaceAll(d.GetAddress(), ":", "-")
}

// normalizeMAC returns a 6-byte MAC as lowercase colon-separated hex, or "" when s is not one, or is all
// zeros or all ones (placeholders firmware reports when it does not know).
func normalizeMAC(s string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return ""
	}
	zero, ones := true, true
	for _, b := range hw {
		zero = zero && b == 0
		ones = ones && b == 0xFF
	}
	if zero || ones {
		return ""
	}
	return hw.String()
}

func idSafe(s string) string {
	s = strings.ToLower(cleanText(s))
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// maxFieldLen bounds every identity string a device reports.
const maxFieldLen = 96

// cleanText makes a device-reported string safe to store and show: control characters dropped, space
// trimmed, at most maxFieldLen bytes (cut on a rune boundary).
func cleanText(s string) string {
	if len(s) > 4*maxFieldLen {
		s = s[:4*maxFieldLen]
	}
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s))
	if len(s) > maxFieldLen {
		cut := maxFieldLen
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// errSilent marks a probe that reached nothing (refused, unreachable, no answer to the connect): not an error
// worth reporting, since most addresses of a range are empty.
var errSilent = errors.New("no answer")

// cgEvidence is what a CGMiner API probe on one port learnt.
type cgEvidence struct {
	port                    int
	ok                      bool // answered as a CGMiner API (or, with wm, btminer's API v2)
	model, firmware, serial string
	wm                      bool   // a Whatsminer (btminer API v2)
	bos                     bool   // Braiins OS: bosminer serves the CGMiner API
	mac                     string // reported by a Whatsminer
	err                     error  // when !ok: errSilent, ErrNotMiner or ErrHostile, wrapped
}

// webEvidence is what the HTTP probes on one port learnt.
type webEvidence struct {
	port  int
	tls   bool
	proto *webInfo // a Proto rig answered /api/v1/pairing/info
	ant   *webInfo // an Antminer web CGI answered (digest challenge or system info)
	err   error    // when neither: errSilent, ErrNotMiner or ErrHostile, wrapped
}

// webInfo is what a Proto rig or an Antminer web CGI said about itself.
type webInfo struct {
	model, serial, mac, firmware, hostname string
	notes                                  []string
}

// decide turns one address's evidence into a device, or into the errors that explain why there is none.
// Precedence: a Proto rig's pairing info, then an Antminer web CGI (paired with the CGMiner API that
// answered), then a bare CGMiner API. Pure: the scanner gathers the evidence, decide judges it.
func decide(addr netip.Addr, req *Request, ports Ports, cgs []cgEvidence, webs []webEvidence) (*Found, []TargetError) {
	hostPort := func(p int) string { return netip.AddrPortFrom(addr, uint16(p)).String() }
	var api *cgEvidence
	for i := range cgs {
		if cgs[i].ok {
			api = &cgs[i]
			break
		}
	}
	var notes []string
	// problems are probe errors worth telling about a found device (a hostile side of it).
	problems := func(skip int) {
		for _, c := range cgs {
			if !c.ok && c.err != nil && !errors.Is(c.err, errSilent) && !errors.Is(c.err, ErrNotMiner) {
				notes = append(notes, fmt.Sprintf("CGMiner API on :%d: %v", c.port, c.err))
			}
		}
		for i, w := range webs {
			if i != skip && w.err != nil && errors.Is(w.err, ErrHostile) {
				notes = append(notes, fmt.Sprintf("web on :%d: %v", w.port, w.err))
			}
		}
	}

	if req.wants(pb.Protocol_PROTOCOL_PROTO) {
		for i, w := range webs {
			if w.proto == nil {
				continue
			}
			d := &pb.Device{Protocol: pb.Protocol_PROTOCOL_PROTO, Address: hostPort(w.port), WebAddress: hostPort(w.port),
				Model: w.proto.model, Serial: w.proto.serial, Mac: w.proto.mac}
			notes = append(notes, w.proto.notes...)
			problems(i)
			return finish(d, w.proto, notes), nil
		}
	}
	if req.wants(pb.Protocol_PROTOCOL_ANTMINER) {
		for i, w := range webs {
			if w.ant == nil {
				continue
			}
			d := &pb.Device{Protocol: pb.Protocol_PROTOCOL_ANTMINER, WebAddress: hostPort(w.port),
				Model: w.ant.model, Serial: w.ant.serial, Mac: w.ant.mac}
			info := *w.ant
			notes = append(notes, w.ant.notes...)
			if api != nil {
				d.Address = hostPort(api.port)
				d.Model = firstNonEmpty(d.Model, api.model)
				d.Serial = firstNonEmpty(d.Serial, api.serial)
				info.firmware = firstNonEmpty(info.firmware, api.firmware)
			} else {
				d.Address = hostPort(ports.CGMiner[0])
				notes = append(notes, fmt.Sprintf("the CGMiner API did not answer on %v: telemetry will fail until it does", ports.CGMiner))
			}
			problems(i)
			return finish(d, &info, notes), nil
		}
	}
	if api != nil && api.wm && req.wants(pb.Protocol_PROTOCOL_WHATSMINER) {
		d := &pb.Device{Protocol: pb.Protocol_PROTOCOL_WHATSMINER, Address: hostPort(api.port), Model: api.model, Serial: api.serial, Mac: api.mac}
		problems(-1)
		return finish(d, &webInfo{firmware: api.firmware}, notes), nil
	}
	if api != nil && api.bos && req.wants(pb.Protocol_PROTOCOL_BRAIINS) {
		// Address is the CGMiner API it answered on; the driver reaches the gRPC API on the same host's
		// public API port (WebAddress left empty).
		d := &pb.Device{Protocol: pb.Protocol_PROTOCOL_BRAIINS, Address: hostPort(api.port), Model: api.model, Serial: api.serial}
		problems(-1)
		return finish(d, &webInfo{firmware: api.firmware}, notes), nil
	}
	if api != nil && !api.wm && req.wants(pb.Protocol_PROTOCOL_CGMINER) {
		d := &pb.Device{Protocol: pb.Protocol_PROTOCOL_CGMINER, Address: hostPort(api.port), Model: api.model, Serial: api.serial}
		problems(-1)
		return finish(d, &webInfo{firmware: api.firmware}, notes), nil
	}

	// No device: every answer that was not silence is an error of this address.
	var errs []TargetError
	for _, c := range cgs {
		if c.ok && c.wm {
			errs = append(errs, TargetError{Addr: addr, Port: c.port, Probe: "cgminer",
				Err: fmt.Errorf("a Whatsminer API (%s), but WHATSMINER was not asked for: %w", describeModel(c.model), ErrNotMiner)})
		} else if c.ok && c.bos {
			errs = append(errs, TargetError{Addr: addr, Port: c.port, Probe: "cgminer",
				Err: fmt.Errorf("a Braiins OS miner (%s), but neither BRAIINS nor CGMINER was asked for: %w", describeModel(c.model), ErrNotMiner)})
		} else if c.ok {
			errs = append(errs, TargetError{Addr: addr, Port: c.port, Probe: "cgminer",
				Err: fmt.Errorf("a CGMiner API (%s), but CGMINER was not asked for: %w", describeModel(c.model), ErrNotMiner)})
		} else if c.err != nil && !errors.Is(c.err, errSilent) {
			errs = append(errs, TargetError{Addr: addr, Port: c.port, Probe: "cgminer", Err: c.err})
		}
	}
	for _, w := range webs {
		switch {
		case w.proto != nil || w.ant != nil:
			errs = append(errs, TargetError{Addr: addr, Port: w.port, Probe: "web",
				Err: fmt.Errorf("a %s, but its protocol was not asked for: %w", webKind(w), ErrNotMiner)})
		case w.err != nil && !errors.Is(w.err, errSilent):
			errs = append(errs, TargetError{Addr: addr, Port: w.port, Probe: "web", Err: w.err})
		}
	}
	return nil, errs
}

func webKind(w webEvidence) string {
	if w.proto != nil {
		return "Proto rig"
	}
	return "Antminer web CGI"
}

func describeModel(m string) string {
	if m == "" {
		return "model unknown"
	}
	return strconv.Quote(m)
}

// finish cleans the identity fields, normalizes the MAC and sets the MinerId.
func finish(d *pb.Device, info *webInfo, notes []string) *Found {
	d.Model, d.Serial = cleanText(d.Model), cleanText(d.Serial)
	if raw := d.Mac; raw != "" {
		d.Mac = normalizeMAC(raw)
		if d.Mac == "" {
			notes = append(notes, fmt.Sprintf("MAC %s is not a usable MAC address; ignored", strconv.Quote(cleanText(raw))))
		}
	}
	d.MinerId = MinerID(d)
	return &Found{Device: d, Firmware: cleanText(info.firmware), Hostname: cleanText(info.hostname), Notes: notes}
}

func firstNonEmpty(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}
