package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// requestTimeout (wall clock) bounds how long a client may take to send its command or read the reply.
	requestTimeout = 10 * time.Second
	maxRequest     = 64 << 10
)

// malformedReply is what FaultMalformed sends: a reply cut off mid-object.
var malformedReply = []byte("{\"STATUS\":[{\"STATUS\":\"S\",\"When\":\x00")

var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// serve handles one connection: one request, one reply, as the CGMiner API does.
func (m *Miner) serve(conn net.Conn) {
	defer m.fleet.wg.Done()
	defer func() {
		conn.Close()
		m.mu.Lock()
		delete(m.conns, conn)
		m.mu.Unlock()
	}()
	m.mu.Lock()
	fault := m.fault
	if fault == FaultFlapping {
		m.flap++
		if m.flap%2 == 0 {
			m.mu.Unlock()
			return
		}
	}
	m.mu.Unlock()

	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	cmd, param, err := readRequest(conn)
	if err != nil {
		return
	}
	switch fault {
	case FaultHang: // read until the client gives up or the fleet closes
		conn.SetReadDeadline(time.Time{})
		io.Copy(io.Discard, conn)
		return
	case FaultSlow:
		t := time.NewTimer(m.fleet.cfg.SlowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.fleet.done:
			return
		}
	}
	bp := replyBufs.Get().(*[]byte)
	defer replyBufs.Put(bp)
	b := (*bp)[:0]
	if fault == FaultMalformed {
		b = append(b, malformedReply...)
	} else {
		b = m.handle(b, cmd, param, conn)
	}
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	conn.Write(b)
	*bp = b
}

// readRequest reads one JSON request {"command":"…","parameter":"…"}. A non-string parameter (some
// clients send pool numbers as numbers) is taken as its JSON text.
func readRequest(conn net.Conn) (cmd, param string, err error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= maxRequest {
				return "", "", errors.New("request too large")
			}
			buf = slices.Grow(buf, len(buf))
		}
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if t := bytes.TrimRight(buf, "\x00 \t\r\n"); len(t) > 0 && t[len(t)-1] == '}' && json.Valid(t) {
			buf = t
			break
		}
		if rerr != nil {
			return "", "", rerr
		}
	}
	var req struct {
		Command   string          `json:"command"`
		Parameter json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(buf, &req); err != nil {
		return "", "", err
	}
	param = string(req.Parameter)
	if len(req.Parameter) > 0 && req.Parameter[0] == '"' {
		if err := json.Unmarshal(req.Parameter, &param); err != nil {
			return "", "", err
		}
	}
	return req.Command, param, nil
}

// readCommands are the commands that may be joined with '+'.
var readCommands = map[string]bool{"summary": true, "stats": true, "pools": true, "version": true, "devs": true}

// handle appends the reply to cmd, with bmminer's trailing NUL.
func (m *Miner) handle(b []byte, cmd, param string, conn net.Conn) []byte {
	now := m.fleet.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(now)
	r := m.readLocked(now)
	parts := strings.Split(cmd, "+")
	if len(parts) == 1 {
		return append(m.replyLocked(b, now, &r, cmd, param, conn), 0)
	}
	for _, p := range parts {
		if !readCommands[p] {
			for _, w := range parts {
				if !readCommands[w] {
					m.logLocked(now, w, param, conn, false)
				}
			}
			return append(m.status(b, now, 'E', 14, "Invalid command: '"+p+"' cannot be joined"), `"id":1}`+"\x00"...)
		}
	}
	b = append(b, '{')
	for _, p := range parts {
		b = appendKey(b, p)
		b = append(b, '[')
		b = m.replyLocked(b, now, &r, p, param, conn)
		b = append(b, "],"...)
	}
	return append(b, `"id":1}`+"\x00"...)
}

func (m *Miner) logLocked(now time.Time, cmd, param string, conn net.Conn, ok bool) {
	m.writes = append(m.writes, Write{At: now, Command: cmd, Parameter: param, Remote: conn.RemoteAddr().String(), Accepted: ok})
}

// replyLocked appends one complete reply object.
func (m *Miner) replyLocked(b []byte, now time.Time, r *reading, cmd, param string, conn net.Conn) []byte {
	switch cmd {
	case "summary":
		b = m.summary(b, now, r)
	case "stats":
		b = m.stats(b, now, r)
	case "pools":
		b = m.poolsReply(b, now)
	case "version":
		b = m.version(b, now)
	case "devs":
		b = m.devs(b, now, r)
	default:
		w, known := writeCommands[cmd]
		if !known {
			b = m.status(b, now, 'E', 14, "Invalid command")
			break
		}
		code, msg, ok := w(m, now, param)
		m.logLocked(now, cmd, param, conn, ok)
		st := byte('S')
		if !ok {
			st = 'E'
		}
		b = m.status(b, now, st, code, msg)
	}
	return append(b, `"id":1}`...)
}
