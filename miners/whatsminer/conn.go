package whatsminer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// past aborts a connection's I/O when ctx ends.
var past = time.Unix(1, 0)

// exchange opens one connection, lets send write the request and read read the reply, all under one
// deadline: Config.ReadTimeout or ctx's, whichever is first.
func (d *Driver) exchange(ctx context.Context, send func(net.Conn) error, read func(net.Conn) ([]byte, error)) ([]byte, error) {
	start := time.Now()
	deadline := start.Add(d.cfg.ReadTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	dialDeadline := start.Add(d.cfg.DialTimeout)
	if deadline.Before(dialDeadline) {
		dialDeadline = deadline
	}
	dialCtx, cancel := context.WithDeadline(ctx, dialDeadline)
	conn, err := d.cfg.Dialer(dialCtx, "tcp", d.addr)
	cancel()
	if err != nil {
		return nil, d.ioErr(ctx, "connect", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, d.ioErr(ctx, "connect", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
	defer stop()
	if err := send(conn); err != nil {
		return nil, d.ioErr(ctx, "send to", err)
	}
	return read(conn)
}

// ioErr classifies a network error as ErrUnreachable, saying whether it timed out or ctx ended.
func (d *Driver) ioErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s %s: %w: %w", op, d.addr, cerr, miners.ErrUnreachable)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s %s: timed out: %w: %w", op, d.addr, miners.ErrUnreachable, err)
	}
	return fmt.Errorf("%s %s: %w: %w", op, d.addr, miners.ErrUnreachable, err)
}

// roundTripV2 sends one v2 request and reads one JSON value back, at most MaxReplyBytes: the reply ends
// with its closing brace whether or not the miner then closes the connection (a trailing NUL is left
// unread).
func (d *Driver) roundTripV2(ctx context.Context, req []byte) ([]byte, error) {
	return d.exchange(ctx, func(c net.Conn) error {
		_, err := c.Write(req)
		return err
	}, func(c net.Conn) ([]byte, error) {
		lr := &io.LimitedReader{R: c, N: int64(d.cfg.MaxReplyBytes) + 1}
		var raw json.RawMessage
		err := json.NewDecoder(lr).Decode(&raw)
		var syn *json.SyntaxError
		switch {
		case err == nil:
			return raw, nil
		case lr.N <= 0:
			return nil, fmt.Errorf("reply from %s exceeds %d bytes: %w", d.addr, d.cfg.MaxReplyBytes, miners.ErrMalformed)
		case err == io.EOF:
			return nil, fmt.Errorf("read from %s: connection closed without a reply: %w", d.addr, miners.ErrUnreachable)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("reply from %s: truncated JSON (the connection closed mid-reply): %w", d.addr, miners.ErrMalformed)
		case errors.As(err, &syn):
			return nil, fmt.Errorf("reply from %s: invalid JSON at byte %d: %v: %w", d.addr, syn.Offset, err, miners.ErrMalformed)
		}
		return nil, d.ioErr(ctx, "read from", err)
	})
}

// roundTripV3 sends one v3 frame and reads one frame back.
func (d *Driver) roundTripV3(ctx context.Context, req []byte) ([]byte, error) {
	return d.exchange(ctx, func(c net.Conn) error {
		return wmapi.WriteFrame(c, req)
	}, func(c net.Conn) ([]byte, error) {
		body, err := wmapi.ReadFrame(c, d.cfg.MaxReplyBytes)
		switch {
		case errors.Is(err, wmapi.ErrFrameTooLarge):
			return nil, fmt.Errorf("reply from %s: %w: %w", d.addr, err, miners.ErrMalformed)
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("read from %s: connection closed without a reply: %w", d.addr, miners.ErrUnreachable)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("reply from %s: truncated frame: %w: %w", d.addr, err, miners.ErrMalformed)
		case err != nil:
			return nil, d.ioErr(ctx, "read from", err)
		}
		return body, nil
	})
}
