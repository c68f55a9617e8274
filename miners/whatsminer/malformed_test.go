package whatsminer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/whatsminer"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

// cannedMiner answers every connection with reply(request), over real TCP: v2 writes the bytes and closes,
// v3 frames them.
type cannedMiner struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startCanned(t *testing.T, v3 bool, reply func(cmd string, req []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cannedMiner{ln: ln}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
				var req []byte
				if v3 {
					if req, err = wmapi.ReadFrame(conn, 1<<20); err != nil {
						return
					}
				} else {
					var raw json.RawMessage
					if json.NewDecoder(conn).Decode(&raw) != nil {
						return
					}
					req = raw
				}
				var r struct {
					Cmd   string `json:"cmd"`
					Param string `json:"param"`
				}
				_ = json.Unmarshal(req, &r)
				out := reply(strings.TrimSpace(r.Cmd+" "+r.Param), req)
				if v3 && out != nil {
					_ = wmapi.WriteFrame(conn, out)
				} else {
					_, _ = conn.Write(out)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		c.wg.Wait()
	})
	return ln.Addr().String()
}

func cannedDriver(t *testing.T, v int, addr string) *whatsminer.Driver {
	d, err := whatsminer.New(&pb.Device{MinerId: "canned", Address: addr}, whatsminer.Config{APIVersion: v, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMalformedV2Replies(t *testing.T) {
	cases := map[string]struct {
		reply  map[string]string // by cmd; missing: a sane default
		write  bool
		is     error
		saying string
	}{
		"summary without SUMMARY": {reply: map[string]string{"summary": `{"STATUS":[{"STATUS":"S","Msg":"Summary"}],"id":1}`}, is: miners.ErrMalformed, saying: "no SUMMARY"},
		"no STATUS":               {reply: map[string]string{"summary": `{"SUMMARY":[{}]}`}, is: miners.ErrMalformed, saying: "no STATUS"},
		"empty STATUS list":       {reply: map[string]string{"summary": `{"STATUS":[],"SUMMARY":[{}]}`}, is: miners.ErrMalformed, saying: "STATUS"},
		"odd STATUS":              {reply: map[string]string{"summary": `{"STATUS":"Q","Msg":"x"}`}, is: miners.ErrMalformed, saying: "STATUS"},
		"hashrate as text":        {reply: map[string]string{"summary": `{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"MHS 5s":"fast"}]}`}, is: miners.ErrMalformed, saying: "summary"},
		"refused read":            {reply: map[string]string{"summary": `{"STATUS":"E","Code":14,"Msg":"invalid cmd"}`}, is: miners.ErrRefused, saying: "invalid cmd"},
		"status Msg not object":   {reply: map[string]string{"status": `{"STATUS":"S","Code":131,"Msg":"off"}`}, is: miners.ErrMalformed, saying: "Msg is not an object"},
		"token without salt":      {write: true, reply: map[string]string{"get_token": `{"STATUS":"S","Code":134,"Msg":{"time":"1","newsalt":"x"}}`}, is: miners.ErrMalformed, saying: "salt"},
		"garbage under the key":   {write: true, reply: map[string]string{"enc": `{"enc":"` + wmapi.Seal([32]byte{1}, []byte("not json at all")) + `"}`}, is: miners.ErrMalformed, saying: "decrypted"},
		"envelope not blocks":     {write: true, reply: map[string]string{"enc": `{"enc":"QUJD"}`}, is: miners.ErrMalformed, saying: "blocks"},
		"empty reply":             {reply: map[string]string{"summary": ``}, is: miners.ErrUnreachable, saying: "without a reply"},
		"trailing NUL tolerated":  {reply: map[string]string{"summary": sane["summary"] + "\x00garbage"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			addr := startCanned(t, false, func(cmd string, req []byte) []byte {
				if strings.Contains(string(req), `"enc"`) {
					cmd = "enc"
				}
				if r, ok := c.reply[cmd]; ok {
					return []byte(r)
				}
				return []byte(sane[cmd])
			})
			d := cannedDriver(t, 2, addr)
			var err error
			if c.write {
				_, err = d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
			} else {
				_, err = d.Poll(ctx(t))
			}
			if c.is == nil {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.saying) {
				t.Fatalf("err %v, want %v saying %q", err, c.is, c.saying)
			}
		})
	}
}

// sane are minimal valid v2 replies, numbers partly as strings as some firmware sends them.
var sane = map[string]string{
	"summary":        `{"STATUS":[{"STATUS":"S","Msg":"Summary"}],"SUMMARY":[{"MHS 5s":"100000000","MHS av":99000000,"Uptime":60,"Power":"3300","Power Limit":3600,"Fan Speed In":5000,"Fan Speed Out":5100}],"id":1}`,
	"edevs":          `{"STATUS":[{"STATUS":"S","Msg":"devs"}],"DEVS":[{"Slot":0,"Temperature":"61.5","MHS 5s":33000000}],"id":1}`,
	"pools":          `{"STATUS":[{"STATUS":"S","Msg":"1 Pool(s)"}],"POOLS":[{"POOL":1,"URL":"stratum+tcp://p:3333","User":"u","Status":"Alive","Priority":0,"Stratum Active":true}],"id":1}`,
	"status":         `{"STATUS":"S","Code":131,"Msg":{"btmineroff":"false"}}`,
	"get_error_code": `{"STATUS":"S","Code":131,"Msg":{"error_code":["110"]}}`,
	"devdetails":     `{"STATUS":[{"STATUS":"S"}],"DEVDETAILS":[{"Model":"M50S"}]}`,
	"get_miner_info": `{"STATUS":"S","Code":131,"Msg":{"mac":"C4:11:00:00:00:01","minersn":"SN1"}}`,
	"get_version":    `{"STATUS":"S","Code":131,"Msg":{"fw_ver":"fw"}}`,
	"get_token":      `{"STATUS":"S","Code":134,"Msg":{"time":"1","salt":"abcdefgh","newsalt":"ijklmnop"}}`,
}

func TestMalformedV3Replies(t *testing.T) {
	cases := map[string]struct {
		reply  string
		is     error
		saying string
	}{
		"no code":         {`{"msg":{"summary":{}}}`, miners.ErrMalformed, "no code"},
		"no msg":          {`{"code":0}`, miners.ErrMalformed, "no msg"},
		"no summary":      {`{"code":0,"msg":{}}`, miners.ErrMalformed, "no summary"},
		"not JSON":        {`<html>`, miners.ErrMalformed, "invalid JSON"},
		"refused":         {`{"code":-2,"desc":"invalid command"}`, miners.ErrRefused, "invalid command"},
		"wrong types":     {`{"code":0,"msg":{"summary":{"hash-realtime":[1,2]}}}`, miners.ErrMalformed, "summary"},
		"closed silently": {"", miners.ErrUnreachable, "without a reply"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			addr := startCanned(t, true, func(string, []byte) []byte {
				if c.reply == "" {
					return nil
				}
				return []byte(c.reply)
			})
			_, err := cannedDriver(t, 3, addr).Poll(ctx(t))
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.saying) {
				t.Fatalf("err %v, want %v saying %q", err, c.is, c.saying)
			}
		})
	}
}

// TestV3OversizedFrameNotRead: a frame announcing more than MaxReplyBytes is refused from its header,
// without waiting for (or reading) its body.
func TestV3OversizedFrameNotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = wmapi.ReadFrame(conn, 1<<20)
		_, _ = conn.Write([]byte{0, 0, 0, 0x40}) // 1 GiB announced, nothing follows
		_, _ = io.Copy(io.Discard, conn)
	}()
	defer func() { ln.Close(); <-done }()
	start := time.Now()
	_, err = cannedDriver(t, 3, ln.Addr().String()).Poll(ctx(t))
	if !errors.Is(err, miners.ErrMalformed) || !errors.Is(err, wmapi.ErrFrameTooLarge) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("took %v: the driver waited for the body", time.Since(start))
	}
}

// TestV2ReplyWithoutClose: firmware that keeps the connection open after its reply is read to the end of
// the JSON value, not to the deadline.
func TestV2ReplyWithoutClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
				var req struct {
					Cmd string `json:"cmd"`
				}
				if json.NewDecoder(conn).Decode(&req) != nil {
					return
				}
				_, _ = conn.Write([]byte(sane[req.Cmd] + "\x00"))
				_, _ = io.Copy(io.Discard, conn) // hold the connection until the client closes it
			}()
		}
	}()
	d, err := whatsminer.New(&pb.Device{MinerId: "open", Address: ln.Addr().String()}, whatsminer.Config{ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tel, err := d.Poll(ctx(t))
	if err != nil || tel.GetHashrate_5SThs() != 100 || tel.GetPowerW() != 3300 {
		t.Fatalf("poll %v %v", tel, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("poll took %v: it waited for the connection to close", el)
	}
}

func TestNewAddresses(t *testing.T) {
	for _, c := range []struct {
		addr string
		v    int
		want string
	}{{"10.0.0.5", 2, "10.0.0.5:4028"}, {"10.0.0.5", 3, "10.0.0.5:4433"}, {"10.0.0.5:14028", 2, "10.0.0.5:14028"},
		{"::1", 2, "[::1]:4028"}, {"[::1]", 3, "[::1]:4433"}} {
		var dialed string
		d, err := whatsminer.New(&pb.Device{MinerId: "x", Address: c.addr}, whatsminer.Config{APIVersion: c.v,
			Dialer: func(_ context.Context, _, addr string) (net.Conn, error) {
				dialed = addr
				return nil, errors.New("no network here")
			}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) || dialed != c.want {
			t.Errorf("%q v%d: dialed %q (%v), want %q", c.addr, c.v, dialed, err, c.want)
		}
	}
	if _, err := whatsminer.New(&pb.Device{MinerId: "x"}, whatsminer.Config{}); err == nil {
		t.Error("a device without address accepted")
	}
	if _, err := whatsminer.New(&pb.Device{MinerId: "x", Address: "h"}, whatsminer.Config{APIVersion: 4}); err == nil {
		t.Error("API version 4 accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []whatsminer.Config{{APIVersion: 1}, {MaxReplyBytes: 100}, {TokenRefresh: time.Hour}, {ReadTimeout: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := whatsminer.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
