package cgminer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// Driver speaks the CGMiner API to one miner. Like every miners.Driver it is used from one goroutine at a
// time.
type Driver struct {
	id, addr    string
	serial, mac string
	cfg         Config
	// split is set once the firmware refuses joined commands; polls then send one request per command.
	split   bool
	strings interner
}

var _ miners.Driver = (*Driver)(nil)

// New returns a driver for dev (MinerId, Address host:port; Serial and Mac are copied into telemetry,
// since the CGMiner API does not report them). Zero Config fields take their defaults.
func New(dev *pb.Device, cfg Config) *Driver {
	return &Driver{
		id:     dev.GetMinerId(),
		addr:   dev.GetAddress(),
		serial: dev.GetSerial(),
		mac:    dev.GetMac(),
		cfg:    cfg.withDefaults(),
	}
}

// pollCommands are read in this order; summary comes first so its hashrate and uptime win over stats'.
var pollCommands = [...]string{"summary", "stats", "pools"}

const joinedCommand = "summary+stats+pools"

var (
	joinedRequest = []byte(`{"command":"` + joinedCommand + `"}`)
	splitRequests = [...][]byte{[]byte(`{"command":"summary"}`), []byte(`{"command":"stats"}`), []byte(`{"command":"pools"}`)}
)

// Poll reads summary, stats and pools, in one round trip when the firmware joins commands.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	start := time.Now()
	sc := getScratch()
	defer putScratch(sc)
	t := &pb.Telemetry{MinerId: d.id, Serial: d.serial, Mac: d.mac}
	if err := d.poll(ctx, sc, t); err != nil {
		return nil, fmt.Errorf("poll %s: %w", d.id, err)
	}
	t.ObservedAtUnixMs = d.cfg.Clock.Now().UnixMilli()
	t.PollLatencyUs = time.Since(start).Microseconds()
	return t, nil
}

func (d *Driver) poll(ctx context.Context, sc *scratch, t *pb.Telemetry) error {
	s := sample{strings: &d.strings}
	if !d.split {
		if err := d.do(ctx, sc, joinedRequest, joinedCommand); err != nil {
			return err
		}
		if sc.doc.nodes[0].kind != kindObject || sc.doc.get(0, "status") < 0 {
			for _, c := range pollCommands {
				if err := readSection(&sc.doc, c, &s, t); err != nil {
					return err
				}
			}
			s.fill(t)
			return nil
		}
		// A plain reply to a joined command: the firmware cannot join. Anything but a refusal is garbage.
		if _, err := sc.doc.status(joinedCommand, 0); !errors.Is(err, miners.ErrRefused) {
			return fmt.Errorf("%s: plain reply to a joined command: %w", joinedCommand, miners.ErrMalformed)
		}
		d.split = true
	}
	for i, c := range pollCommands {
		if err := d.do(ctx, sc, splitRequests[i], c); err != nil {
			return err
		}
		if err := readSection(&sc.doc, c, &s, t); err != nil {
			return err
		}
	}
	s.fill(t)
	return nil
}

// readSection reads command's data from a parsed reply into s (summary, stats) or t (pools).
func readSection(d *doc, command string, s *sample, t *pb.Telemetry) error {
	a, err := d.section(command, command)
	if err != nil {
		return err
	}
	if command == "pools" {
		t.Pools, _ = s.pools(d, a)
	} else {
		s.absorb(d, a)
	}
	return nil
}

// Close implements miners.Driver; the driver holds no connection between requests.
func (d *Driver) Close() error { return nil }

// scratch is the reply buffer and node arena of one request, pooled across all drivers: a site has
// thousands of drivers but only as many buffers as polls in flight.
type scratch struct {
	buf []byte
	doc doc
}

// maxPooledBuf keeps a rare huge reply from pinning its buffer in the pool.
const maxPooledBuf = 256 << 10

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 16<<10)} }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.buf) <= maxPooledBuf {
		sc.doc.buf = nil
		scratchPool.Put(sc)
	}
}

// do sends one request and parses the reply into sc.doc. what names the request in errors.
func (d *Driver) do(ctx context.Context, sc *scratch, req []byte, what string) error {
	body, err := d.roundTrip(ctx, sc, req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := sc.doc.parse(body); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// past is a deadline that has passed, set on a connection to abort its I/O when ctx ends.
var past = time.Unix(1, 0)

// roundTrip opens a connection, writes req and reads the reply until the NUL that ends bmminer replies, EOF
// or MaxReplyBytes, whichever comes first, all within one deadline.
func (d *Driver) roundTrip(ctx context.Context, sc *scratch, req []byte) ([]byte, error) {
	start := time.Now()
	deadline, ctxBound := start.Add(d.cfg.ReadTimeout), false
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline, ctxBound = dl, true
	}
	budget := deadline.Sub(start)
	dialDeadline := start.Add(d.cfg.DialTimeout)
	if deadline.Before(dialDeadline) {
		dialDeadline = deadline
	}
	var conn net.Conn
	var err error
	if ctxBound && dialDeadline.Equal(deadline) {
		// ctx's own deadline already bounds the dial: no child context (and timer) per request.
		conn, err = d.cfg.Dialer(ctx, "tcp", d.addr)
	} else {
		dialCtx, cancel := context.WithDeadline(ctx, dialDeadline)
		conn, err = d.cfg.Dialer(dialCtx, "tcp", d.addr)
		cancel()
	}
	if err != nil {
		return nil, d.ioErr(ctx, ctxBound && dialDeadline.Equal(deadline), "connect", dialDeadline.Sub(start), err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, d.ioErr(ctx, ctxBound, "connect", budget, err)
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
		defer stop()
	}
	if _, err := conn.Write(req); err != nil {
		return nil, d.ioErr(ctx, ctxBound, "send to", budget, err)
	}
	buf := sc.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 4<<10), d.cfg.MaxReplyBytes+1-len(buf)))
			sc.buf = buf
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		if i := bytes.IndexByte(buf[len(buf):len(buf)+n], 0); i >= 0 {
			return buf[:len(buf)+i], nil
		}
		buf = buf[:len(buf)+n]
		if len(buf) > d.cfg.MaxReplyBytes {
			return nil, fmt.Errorf("reply from %s exceeds %d bytes: %w", d.addr, d.cfg.MaxReplyBytes, miners.ErrMalformed)
		}
		switch {
		case err == io.EOF && len(buf) == 0:
			return nil, fmt.Errorf("read from %s: connection closed without a reply: %w", d.addr, miners.ErrUnreachable)
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, d.ioErr(ctx, ctxBound, "read from", budget, err)
		}
	}
}

// ioErr classifies a network error: every one is ErrUnreachable, a deadline says it timed out, and the end
// of ctx (ctxBound: its deadline was the connection's) wraps ctx's error.
func (d *Driver) ioErr(ctx context.Context, ctxBound bool, op string, budget time.Duration, err error) error {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	cerr := ctx.Err()
	if cerr == nil && timeout && ctxBound { // the connection's deadline can fire before ctx's own timer
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%s %s: %w: %w", op, d.addr, cerr, miners.ErrUnreachable)
	}
	if timeout {
		return fmt.Errorf("%s %s: timed out after %v: %w: %w", op, d.addr, budget.Round(time.Millisecond), miners.ErrUnreachable, err)
	}
	return fmt.Errorf("%s %s: %w: %w", op, d.addr, miners.ErrUnreachable, err)
}
