package cgminer

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/hashfleet/hashfleet/miners"
)

// maxDepth bounds nesting so a hostile reply cannot exhaust the stack. CGMiner replies nest four deep.
const maxDepth = 32

type kind uint8

const (
	kindNull kind = iota // null, and the bare nan/inf some firmware prints for a float it could not compute
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

// node is one JSON value. Children of an object or array form a linked list through next; key and raw point
// into the reply buffer, which the parser unescapes in place.
type node struct {
	key   []byte // member name when the parent is an object
	raw   []byte // string contents, number text, or "true"/"false"
	first int32  // first child, -1 if none
	next  int32  // next sibling, -1 if none
	kind  kind
}

// doc is a parsed reply. The zero value is ready to use; parse reuses the node arena.
type doc struct {
	nodes []node
	buf   []byte
	pos   int
}

// parse reads buf (which it modifies) into d. The root is node 0.
func (d *doc) parse(buf []byte) error {
	end := len(buf)
	for end > 0 && (buf[end-1] == 0 || isSpace(buf[end-1])) {
		end--
	}
	d.buf, d.pos, d.nodes = buf[:end], 0, d.nodes[:0]
	d.skipSpace()
	if d.pos == len(d.buf) {
		return fmt.Errorf("empty reply: %w", miners.ErrMalformed)
	}
	if _, err := d.value(0); err != nil {
		return err
	}
	if d.skipSpace(); d.pos < len(d.buf) {
		return d.syntax("unexpected data after the reply")
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *doc) skipSpace() {
	for d.pos < len(d.buf) && isSpace(d.buf[d.pos]) {
		d.pos++
	}
}

func (d *doc) syntax(what string) error {
	if d.pos >= len(d.buf) {
		return fmt.Errorf("invalid JSON: reply truncated at byte %d (%s): %w", d.pos, what, miners.ErrMalformed)
	}
	return fmt.Errorf("invalid JSON at byte %d (%q): %s: %w", d.pos, d.buf[d.pos], what, miners.ErrMalformed)
}

func (d *doc) add(n node) int32 {
	d.nodes = append(d.nodes, n)
	return int32(len(d.nodes) - 1)
}

func (d *doc) value(depth int) (int32, error) {
	d.skipSpace()
	if d.pos >= len(d.buf) {
		return -1, d.syntax("expected a value")
	}
	switch c := d.buf[d.pos]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return -1, d.syntax(fmt.Sprintf("nested deeper than %d", maxDepth))
		}
		return d.container(c, depth+1)
	case c == '"':
		s, err := d.str()
		if err != nil {
			return -1, err
		}
		return d.add(node{kind: kindString, raw: s, first: -1, next: -1}), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return d.literal()
	}
}

// container parses an object or array. Inside arrays it accepts an object directly followed by another
// object, bmminer's "}{" bug in stats, as if the comma were there.
func (d *doc) container(open byte, depth int) (int32, error) {
	k, close := kindArray, byte(']')
	if open == '{' {
		k, close = kindObject, '}'
	}
	self := d.add(node{kind: k, first: -1, next: -1})
	d.pos++
	last := int32(-1)
	for {
		d.skipSpace()
		if d.pos < len(d.buf) && d.buf[d.pos] == close { // empty, or a trailing comma
			d.pos++
			return self, nil
		}
		var key []byte
		if k == kindObject {
			if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
				return -1, d.syntax("expected a member name")
			}
			var err error
			if key, err = d.str(); err != nil {
				return -1, err
			}
			if d.skipSpace(); d.pos >= len(d.buf) || d.buf[d.pos] != ':' {
				return -1, d.syntax("expected ':' after member name")
			}
			d.pos++
		}
		child, err := d.value(depth)
		if err != nil {
			return -1, err
		}
		d.nodes[child].key = key
		if last < 0 {
			d.nodes[self].first = child
		} else {
			d.nodes[last].next = child
		}
		last = child
		if d.skipSpace(); d.pos >= len(d.buf) {
			return -1, d.syntax(fmt.Sprintf("expected ',' or '%c'", close))
		}
		switch c := d.buf[d.pos]; {
		case c == ',':
			d.pos++
		case c == close:
			d.pos++
			return self, nil
		case c == '{' && k == kindArray && d.nodes[child].kind == kindObject:
			// "}{": missing comma between objects; the next iteration reads the object.
		default:
			return -1, d.syntax(fmt.Sprintf("expected ',' or '%c'", close))
		}
	}
}

// str reads a string starting at the opening quote and returns its unescaped contents, written in place:
// an escape is never shorter than what it decodes to, so the output never overtakes the input.
func (d *doc) str() ([]byte, error) {
	d.pos++
	start, w := d.pos, d.pos
	for r := d.pos; r < len(d.buf); {
		c := d.buf[r]
		switch {
		case c == '"':
			d.pos = r + 1
			return d.buf[start:w], nil
		case c != '\\':
			d.buf[w] = c
			w, r = w+1, r+1
			continue
		}
		if r+1 >= len(d.buf) {
			break
		}
		e := d.buf[r+1]
		r += 2
		switch e {
		case 'b':
			e = '\b'
		case 'f':
			e = '\f'
		case 'n':
			e = '\n'
		case 'r':
			e = '\r'
		case 't':
			e = '\t'
		case 'u':
			ru, n := decodeU(d.buf[r-2:])
			r += n - 2
			w += utf8.EncodeRune(d.buf[w:], ru)
			continue
		}
		// '"', '\\', '/' stand for themselves; so does any unknown escape, tolerated as firmware sends them.
		d.buf[w] = e
		w++
	}
	d.pos = len(d.buf)
	return nil, d.syntax("unterminated string")
}

// decodeU decodes a \uXXXX escape (and its low surrogate, if any) at the start of b and returns the rune and
// the number of bytes consumed. A malformed escape decodes as a plain 'u', consuming the backslash and 'u'.
func decodeU(b []byte) (rune, int) {
	r1, ok := hex4(b[2:])
	if !ok {
		return 'u', 2
	}
	if r1 < 0xD800 || r1 > 0xDBFF {
		return r1, 6
	}
	if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if r2, ok := hex4(b[8:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
			return (r1-0xD800)<<10 | (r2 - 0xDC00) + 0x10000, 12
		}
	}
	return utf8.RuneError, 6
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number scans a number token leniently: its text is parsed when a field is read, so junk such as "1-2"
// simply reads as missing. "-nan" and "-inf" are handed to literal.
func (d *doc) number() (int32, error) {
	start := d.pos
	if d.buf[d.pos] == '-' && d.pos+1 < len(d.buf) && (d.buf[d.pos+1] == 'n' || d.buf[d.pos+1] == 'i') {
		d.pos++
		return d.literal()
	}
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		d.pos++
	}
	return d.add(node{kind: kindNumber, raw: d.buf[start:d.pos], first: -1, next: -1}), nil
}

func (d *doc) literal() (int32, error) {
	rest := d.buf[d.pos:]
	for _, lit := range [...]string{"true", "false", "null", "nan", "inf"} {
		switch {
		case len(rest) >= len(lit) && string(rest[:len(lit)]) == lit:
			n := node{kind: kindNull, first: -1, next: -1}
			if lit[0] == 't' || lit[0] == 'f' {
				n.kind, n.raw = kindBool, rest[:len(lit)]
			}
			d.pos += len(lit)
			return d.add(n), nil
		case len(rest) < len(lit) && string(rest) == lit[:len(rest)]:
			d.pos = len(d.buf) // cut off inside the literal
		}
	}
	return -1, d.syntax("expected a value")
}

// get returns the member of object o whose name folds to name (see fold), or -1.
func (d *doc) get(o int32, name string) int32 {
	if o < 0 || d.nodes[o].kind != kindObject {
		return -1
	}
	var tmp [maxKey]byte
	for c := d.nodes[o].first; c >= 0; c = d.nodes[c].next {
		if string(fold(tmp[:0], d.nodes[c].key)) == name {
			return c
		}
	}
	return -1
}

// maxKey bounds folded key length; longer keys are never in the alias table and fold truncated.
const maxKey = 48

// fold lowercases ASCII and drops ' ', '_', '-' and '%', so "GHS 5s", "GHS5s" and "ghs_5s" all read "ghs5s"
// and "Device Hardware%" reads "devicehardware". It appends to dst up to maxKey bytes.
func fold(dst, key []byte) []byte {
	for _, c := range key {
		if len(dst) == maxKey {
			break
		}
		switch {
		case c == ' ' || c == '_' || c == '-' || c == '%':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// float reads node n as a number, accepting numbers sent as strings ("13500.12") and strings with a unit
// suffix ("3250 W"). ok is false for missing, null, nan and unreadable values.
func (d *doc) float(n int32) (v float64, ok bool) {
	if n < 0 {
		return 0, false
	}
	switch nd := &d.nodes[n]; nd.kind {
	case kindNumber:
		return parseFloat(nd.raw)
	case kindString:
		return parseFloat(numericPrefix(nd.raw))
	case kindBool:
		if nd.raw[0] == 't' {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func numericPrefix(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	i := 0
	for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '.' || b[i] == 'e' || b[i] == 'E' ||
		((b[i] == '-' || b[i] == '+') && (i == 0 || b[i-1] == 'e' || b[i-1] == 'E'))) {
		i++
	}
	return b[:i]
}

func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	// The string aliases b only for the call: ParseFloat copies its input into any error it returns.
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// boolean reads node n as a flag: true, "true", "Y", "yes" or a non-zero number.
func (d *doc) boolean(n int32) bool {
	if n < 0 {
		return false
	}
	switch nd := &d.nodes[n]; nd.kind {
	case kindBool:
		return nd.raw[0] == 't'
	case kindString:
		var tmp [maxKey]byte
		s := string(fold(tmp[:0], nd.raw))
		return s == "true" || s == "y" || s == "yes" || s == "1"
	case kindNumber:
		v, _ := parseFloat(nd.raw)
		return v != 0
	}
	return false
}

// text returns node n's string contents, or the text of a number or bool; nil when absent or null.
func (d *doc) text(n int32) []byte {
	if n < 0 {
		return nil
	}
	return d.nodes[n].raw
}

// maxOfList reads "44-44-61-61" style per-sensor lists (and plain numbers) and returns the largest value.
func (d *doc) maxOfList(n int32) (float64, bool) {
	if n < 0 || d.nodes[n].kind != kindString {
		return d.float(n)
	}
	best, found := 0.0, false
	b := d.nodes[n].raw
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '-' && b[i] != ',' && b[i] != ' ' {
			i++
		}
		if v, ok := parseFloat(b[:i]); ok && (!found || v > best) {
			best, found = v, true
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return best, found
}
