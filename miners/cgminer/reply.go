package cgminer

import (
	"fmt"

	"github.com/hashfleet/hashfleet/miners"
)

// reply returns the reply object for command: in a joined reply ("summary+stats+pools" answers
// {"summary":[{...}],"stats":[{...}],...}) the one object under the command's name, otherwise the root.
// A joined reply has no top-level STATUS.
func (d *doc) reply(command string) (int32, error) {
	if d.nodes[0].kind != kindObject {
		return -1, fmt.Errorf("%s: reply is not a JSON object: %w", command, miners.ErrMalformed)
	}
	if d.get(0, "status") >= 0 {
		return 0, nil
	}
	r := d.get(0, command)
	if r < 0 || d.nodes[r].kind != kindArray || d.nodes[r].first < 0 {
		return -1, fmt.Errorf("%s: joined reply has no %q entry: %w", command, command, miners.ErrMalformed)
	}
	return d.nodes[r].first, nil
}

// status returns an error wrapping miners.ErrRefused when reply's STATUS is E (error) or F (fatal), carrying
// the firmware's Msg, and otherwise the Msg (pointing into the reply). A reply without STATUS is accepted.
func (d *doc) status(command string, reply int32) (msg []byte, err error) {
	s := d.get(reply, "status")
	if s >= 0 && d.nodes[s].kind == kindArray {
		s = d.nodes[s].first
	}
	if s < 0 {
		return nil, nil
	}
	code := d.text(s)
	if d.nodes[s].kind == kindObject {
		code = d.text(d.get(s, "status"))
		msg = d.text(d.get(s, "msg"))
	}
	if len(code) > 0 && (code[0] == 'E' || code[0] == 'F') {
		n, _ := d.float(d.get(s, "code"))
		return msg, fmt.Errorf("%s: firmware says %q (STATUS=%c, code %d): %w", command, msg, code[0], int(n), miners.ErrRefused)
	}
	return msg, nil
}

// section returns the data array of command's reply (e.g. SUMMARY for summary), after checking STATUS.
// name is the folded key of the array.
func (d *doc) section(command, name string) (int32, error) {
	r, err := d.reply(command)
	if err != nil {
		return -1, err
	}
	if _, err := d.status(command, r); err != nil {
		return -1, err
	}
	a := d.get(r, name)
	if a < 0 || d.nodes[a].kind != kindArray {
		return -1, fmt.Errorf("%s: reply has no %s array: %w", command, name, miners.ErrMalformed)
	}
	return a, nil
}
