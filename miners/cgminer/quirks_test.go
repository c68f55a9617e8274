package cgminer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

func TestPollS19Reply(t *testing.T) {
	srv := serveRaw(t, reply(s19Joined))
	tel := mustPoll(t, srv.driver(Config{}))
	if tel.State != pb.MinerState_MINER_STATE_MINING || !near(tel.Hashrate_5SThs, 104.21236) || !near(tel.HashrateAvgThs, 104.07281) {
		t.Errorf("state %v, hashrate 5s %v avg %v", tel.State, tel.Hashrate_5SThs, tel.HashrateAvgThs)
	}
	if tel.Model != "Antminer S19j Pro" || tel.Firmware != "Mon Nov 29 15:11:22 CST 2021" || tel.UptimeS != 3600 || tel.WorkMode != "normal" {
		t.Errorf("model %q firmware %q uptime %d mode %q", tel.Model, tel.Firmware, tel.UptimeS, tel.WorkMode)
	}
	if len(tel.Boards) != 3 {
		t.Fatalf("boards = %v", tel.Boards)
	}
	b := tel.Boards[0]
	if b.Index != 1 || b.TempC != 44 || b.ChipTempC != 59 || !near(b.HashrateThs, 34.75012) || b.Chips != 126 {
		t.Errorf("board 1 = %v", b)
	}
	if !slices.Equal(tel.FansRpm, []int32{5520, 5400, 5520, 5400}) {
		t.Errorf("fans = %v", tel.FansRpm)
	}
	if len(tel.Pools) != 2 || tel.Pools[0].Url != "stratum+tcp://a.example:3333" || !tel.Pools[0].Active || tel.Pools[0].Accepted != 10 || tel.Pools[1].Active {
		t.Errorf("pools = %v", tel.Pools)
	}
	if tel.PowerW != 0 || tel.EfficiencyJth != 0 || len(tel.Errors) != 0 {
		t.Errorf("power %v efficiency %v errors %v, want none reported", tel.PowerW, tel.EfficiencyJth, tel.Errors)
	}
	if got := srv.commands(); !slices.Equal(got, []string{"summary+stats+pools"}) {
		t.Errorf("requests = %v, want one joined request", got)
	}
}

func TestQuirkKeyCase(t *testing.T) {
	srv := serveRaw(t, reply(`{"Summary":[{"status":[{"status":"S","msg":"Summary"}],"summary":[{"ELAPSED":7,"ghs 5s":2000,"Ghs Av":1000}]}],`+
		`"STATS":[{"Status":[{"STATUS":"S"}],"stats":[{"TYPE":"Antminer S19"},{"Temp1":60,"TEMP2_1":75,"Chain_Rate1":"2000","FAN1":5000,"MODE":0}]}],`+
		`"pools":[{"STATUS":[{"Status":"S"}],"Pools":[{"pool":0,"url":"stratum+tcp://a:3333","USER":"u","STATUS":"Alive","stratum active":true}]}],"id":1}`))
	tel := mustPoll(t, srv.driver(Config{}))
	if tel.Hashrate_5SThs != 2 || tel.HashrateAvgThs != 1 || tel.UptimeS != 7 || tel.Model != "Antminer S19" {
		t.Errorf("hashrate %v/%v uptime %d model %q", tel.Hashrate_5SThs, tel.HashrateAvgThs, tel.UptimeS, tel.Model)
	}
	if len(tel.Boards) != 1 || tel.Boards[0].TempC != 60 || tel.Boards[0].ChipTempC != 75 || tel.Boards[0].HashrateThs != 2 {
		t.Errorf("boards = %v", tel.Boards)
	}
	if len(tel.Pools) != 1 || tel.Pools[0].User != "u" || !tel.Pools[0].Active || len(tel.FansRpm) != 1 {
		t.Errorf("pools %v fans %v", tel.Pools, tel.FansRpm)
	}
}

// TestQuirkMisspelledKeys runs one reply per spelling seen in firmware and checks each reads the same.
func TestQuirkMisspelledKeys(t *testing.T) {
	cases := []struct {
		name, summary, stats string
		check                func(*pb.Telemetry) bool
	}{
		{"GHS 5s", `"GHS 5s":13500`, `{}`, func(t *pb.Telemetry) bool { return t.Hashrate_5SThs == 13.5 }},
		{"GHS5s", `"GHS5s":13500`, `{}`, func(t *pb.Telemetry) bool { return t.Hashrate_5SThs == 13.5 }},
		{"MHS 5s", `"MHS 5s":13500000`, `{}`, func(t *pb.Telemetry) bool { return t.Hashrate_5SThs == 13.5 }},
		{"MHS av", `"MHS av":13400000`, `{}`, func(t *pb.Telemetry) bool { return t.HashrateAvgThs == 13.4 }},
		{"GHS av", `"GHS av":13400`, `{}`, func(t *pb.Telemetry) bool { return t.HashrateAvgThs == 13.4 }},
		{"Device Hardware%", `"Device Hardware%":2.5`, `{}`, hwError},
		{"Device Hardware %", `"Device Hardware %":2.5`, `{}`, hwError},
		{"DeviceHardware%", `"DeviceHardware%":2.5`, `{}`, hwError},
		{"fan_num", `"GHS 5s":1`, `{"fan_num":2,"fan1":6000,"fan2":0}`, fanError},
		{"fan num", `"GHS 5s":1`, `{"fan num":2,"fan1":6000,"fan2":0}`, fanError},
		{"temp2_1", ``, `{"temp2_1":80}`, func(t *pb.Telemetry) bool { return len(t.Boards) == 1 && t.Boards[0].ChipTempC == 80 }},
		{"temp_chip1", ``, `{"temp_chip1":"70-72-80-79"}`, func(t *pb.Telemetry) bool { return len(t.Boards) == 1 && t.Boards[0].ChipTempC == 80 }},
		{"temp_pcb1", ``, `{"temp_pcb1":"50-52-61-60"}`, func(t *pb.Telemetry) bool { return len(t.Boards) == 1 && t.Boards[0].TempC == 61 }},
		{"chain_rate in MH/s", ``, `{"rate_unit":"MH/s","chain_rate2":"5000000"}`, func(t *pb.Telemetry) bool {
			return len(t.Boards) == 1 && t.Boards[0].Index == 2 && t.Boards[0].HashrateThs == 5
		}},
		{"chain_power", `"GHS 5s":100000`, `{"chain_power":"3250 W"}`, func(t *pb.Telemetry) bool { return t.PowerW == 3250 && t.EfficiencyJth == 32.5 }},
		{"Power", `"GHS 5s":100000,"Power":3000`, `{}`, func(t *pb.Telemetry) bool { return t.PowerW == 3000 && t.EfficiencyJth == 30 }},
		{"work mode sleep", `"GHS 5s":0`, `{"Mode":1}`, func(t *pb.Telemetry) bool {
			return t.WorkMode == "sleep" && t.State == pb.MinerState_MINER_STATE_CURTAILED
		}},
		{"IsSleeping", ``, `{"IsSleeping":"Y"}`, func(t *pb.Telemetry) bool { return t.State == pb.MinerState_MINER_STATE_CURTAILED }},
		{"Paused", `"Paused":true`, `{}`, func(t *pb.Telemetry) bool { return t.State == pb.MinerState_MINER_STATE_STOPPED }},
		{"no hashrate", `"GHS 5s":0`, `{}`, func(t *pb.Telemetry) bool { return t.State == pb.MinerState_MINER_STATE_ONLINE }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := serveRaw(t, reply(joined(summaryReply(c.summary), statsReply(c.stats), poolsReply(""))))
			if tel := mustPoll(t, srv.driver(Config{})); !c.check(tel) {
				t.Errorf("telemetry does not read %s:\n%v", c.name, tel)
			}
		})
	}
}

func hwError(t *pb.Telemetry) bool {
	return slices.Equal(t.Errors, []string{"hardware error rate 2.50%"})
}

func fanError(t *pb.Telemetry) bool {
	return slices.Equal(t.FansRpm, []int32{6000}) && slices.Equal(t.Errors, []string{"1 of 2 fans report no speed"})
}

func TestQuirkTrailingNULs(t *testing.T) {
	t.Run("several", func(t *testing.T) {
		srv := serveRaw(t, reply(s19Joined+"\x00\x00\x00"))
		mustPoll(t, srv.driver(Config{}))
	})
	t.Run("connection left open after the NUL", func(t *testing.T) {
		srv := serveRaw(t, func(_ string, c net.Conn) {
			c.Write([]byte(s19Joined))
			io.Copy(io.Discard, c) // until the driver hangs up
		})
		start := time.Now()
		mustPoll(t, srv.driver(Config{ReadTimeout: time.Second}))
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("poll took %v: the NUL should end the reply", d)
		}
	})
	t.Run("no NUL, ended by close", func(t *testing.T) {
		srv := serveRaw(t, reply(strings.TrimSuffix(s19Joined, "\x00")))
		mustPoll(t, srv.driver(Config{}))
	})
}

func TestQuirkNumbersAsStrings(t *testing.T) {
	srv := serveRaw(t, reply(joined(
		summaryReply(`"Elapsed":"3600","GHS 5s":"13500.12","GHS av":" 13400.5 "`),
		statsReply(`{"Type":"Antminer S19"},{"fan1":"5400","temp1":"61","temp2_1":"76.5","chain_acn1":"76","chain_rate1":"4500.04"}`),
		poolsReply(`{"POOL":"0","URL":"u","Priority":"1","Accepted":"12","Rejected":"2","Stratum Active":"true"}`))))
	tel := mustPoll(t, srv.driver(Config{}))
	if tel.UptimeS != 3600 || !near(tel.Hashrate_5SThs, 13.50012) || !near(tel.HashrateAvgThs, 13.4005) {
		t.Errorf("uptime %d hashrate %v/%v", tel.UptimeS, tel.Hashrate_5SThs, tel.HashrateAvgThs)
	}
	if len(tel.Boards) != 1 || tel.Boards[0].TempC != 61 || tel.Boards[0].ChipTempC != 76.5 || tel.Boards[0].Chips != 76 || !near(tel.Boards[0].HashrateThs, 4.50004) {
		t.Errorf("boards = %v", tel.Boards)
	}
	if p := tel.Pools[0]; p.Priority != 1 || p.Accepted != 12 || p.Rejected != 2 || !p.Active || tel.FansRpm[0] != 5400 {
		t.Errorf("pool %v fans %v", p, tel.FansRpm)
	}
}

func TestQuirkBareNaN(t *testing.T) {
	srv := serveRaw(t, reply(joined(summaryReply(`"GHS 5s":nan,"GHS av":-nan,"Elapsed":5`), statsReply(`{"GHS 5s":"2000","temp1":inf}`), poolsReply(""))))
	tel := mustPoll(t, srv.driver(Config{}))
	if tel.Hashrate_5SThs != 2 || tel.HashrateAvgThs != 0 || tel.UptimeS != 5 || len(tel.Boards) != 0 {
		t.Errorf("nan must read as missing: %v", tel)
	}
}

func TestQuirkStatsMissingComma(t *testing.T) {
	// Antminer S9 bmminer: no comma between the two STATS objects; chains 6-8; fans on fan3 and fan6.
	stats := `{"STATUS":[{"STATUS":"S","When":1,"Code":70,"Msg":"CGMiner stats","Description":"cgminer 4.9.0"}],` +
		`"STATS":[{"BMMiner":"2.0.0","Miner":"16.8.1.3","CompileTime":"Fri Nov 17 17:37:49 CST 2017","Type":"Antminer S9"}` +
		`{"STATS":0,"ID":"BC50","Elapsed":100,"GHS 5s":"13891.52","fan_num":2,"fan1":0,"fan2":0,"fan3":5880,"fan4":0,"fan5":0,"fan6":5760,` +
		`"temp1":0,"temp6":62,"temp7":64,"temp8":60,"temp2_6":78,"temp2_7":80,"temp2_8":76,"chain_acn6":63,"chain_acn7":63,"chain_acn8":63,` +
		`"chain_rate6":"4634.21","chain_rate7":"4601.00","chain_rate8":"4656.31","chain_rate1":""}],"id":1}`
	srv := serveRaw(t, reply(joined(summaryReply(`"GHS 5s":"13891.52"`), stats, poolsReply(onePool))))
	tel := mustPoll(t, srv.driver(Config{}))
	if tel.Model != "Antminer S9" || len(tel.Boards) != 3 || tel.Boards[0].Index != 6 || tel.Boards[2].ChipTempC != 76 {
		t.Errorf("model %q boards %v", tel.Model, tel.Boards)
	}
	if !slices.Equal(tel.FansRpm, []int32{5880, 5760}) || len(tel.Errors) != 0 {
		t.Errorf("fans %v errors %v", tel.FansRpm, tel.Errors)
	}
}

func TestQuirkTruncatedJSON(t *testing.T) {
	body := strings.TrimSuffix(s19Joined, "\x00")
	for _, n := range []int{1, 2, 10, 100, len(body) / 2, len(body) - 1} {
		srv := serveRaw(t, reply(body[:n]))
		_, err := poll(t, srv.driver(Config{}))
		if !errors.Is(err, miners.ErrMalformed) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut at %d: err = %v, want ErrMalformed saying truncated", n, err)
		}
	}
}

func TestQuirkInvalidJSON(t *testing.T) {
	for _, c := range []struct{ reply, want string }{
		{`{"STATUS":[{"STATUS":"S"}] "SUMMARY":[]}`, `invalid JSON at byte 27 ('"'): expected ',' or '}'`},
		{`not json`, `invalid JSON at byte 0 ('n'): expected a value`},
		{`{"summary":tru}`, `expected a value`},
		{`{"summary":[{}]} trailing`, `unexpected data after the reply`},
		{`[1,2]`, `reply is not a JSON object`},
		{`{"stats":[{}],"pools":[{}]}`, `joined reply has no "summary" entry`},
		{`{"summary":[{"STATUS":[{"STATUS":"S"}]}],"stats":[{}],"pools":[{}]}`, `reply has no summary array`},
		{`{"STATUS":[{"STATUS":"S"}],"SUMMARY":[]}`, `plain reply to a joined command`},
		{"\x00\x00", `empty reply`},
		{strings.Repeat("[", 100), `nested deeper than 32`},
	} {
		srv := serveRaw(t, reply(c.reply))
		_, err := poll(t, srv.driver(Config{}))
		if !errors.Is(err, miners.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reply %.30q: err = %v, want ErrMalformed with %q", c.reply, err, c.want)
		}
	}
}

func TestQuirkSlowReply(t *testing.T) {
	srv := serveRaw(t, func(_ string, c net.Conn) {
		time.Sleep(400 * time.Millisecond)
		c.Write([]byte(s19Joined))
	})
	start := time.Now()
	_, err := poll(t, srv.driver(Config{ReadTimeout: 100 * time.Millisecond}))
	if !errors.Is(err, miners.ErrUnreachable) || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("err = %v, want ErrUnreachable that says it timed out", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("gave up after %v, want ~100ms", d)
	}
}

func TestContextDeadlineWins(t *testing.T) {
	srv := serveRaw(t, func(_ string, c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := srv.driver(Config{}).Poll(ctx)
	if !errors.Is(err, miners.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable wrapping the context's deadline", err)
	}
}

func TestContextCancelAbortsRead(t *testing.T) {
	srv := serveRaw(t, func(_ string, c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := srv.driver(Config{}).Poll(ctx)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("err = %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = poll(t, New(&pb.Device{MinerId: "m1", Address: addr}, Config{}))
	if !errors.Is(err, miners.ErrUnreachable) || !strings.Contains(err.Error(), "poll m1: summary+stats+pools: connect "+addr) {
		t.Fatalf("err = %v, want ErrUnreachable from connect", err)
	}
}

func TestDialerSeam(t *testing.T) {
	boom := errors.New("no route to host")
	d := New(&pb.Device{MinerId: "m1", Address: "10.0.0.1:4028"}, Config{
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, ok := ctx.Deadline(); !ok || network != "tcp" || addr != "10.0.0.1:4028" {
				t.Errorf("dialer got %s %s, deadline set %v", network, addr, ok)
			}
			return nil, boom
		},
	})
	if _, err := poll(t, d); !errors.Is(err, boom) || !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
}

func TestQuirkStatusError(t *testing.T) {
	const denied = `{"STATUS":[{"STATUS":"E","When":1700000000,"Code":45,"Msg":"Access denied to 'restart' command","Description":"cgminer 4.11.1"}],"id":1}` + "\x00"
	srv := serveRaw(t, reply(denied))
	_, err := srv.driver(Config{}).Execute(context.Background(), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
	if !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), `firmware says "Access denied to 'restart' command" (STATUS=E, code 45)`) {
		t.Fatalf("err = %v, want ErrRefused with the firmware's Msg", err)
	}
	if _, err := poll(t, srv.driver(Config{})); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("poll err = %v, want ErrRefused", err)
	}
}

func TestQuirkHugeReply(t *testing.T) {
	srv := serveRaw(t, func(_ string, c net.Conn) {
		c.Write([]byte(`{"summary":[{"STATUS":[{"STATUS":"S","Msg":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 32 { // 2 MiB, until the driver hangs up
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	_, err := poll(t, srv.driver(Config{MaxReplyBytes: 64 << 10}))
	if !errors.Is(err, miners.ErrMalformed) || !strings.Contains(err.Error(), "exceeds 65536 bytes") {
		t.Fatalf("err = %v, want ErrMalformed: reply too large", err)
	}
}

func TestQuirkNoJoinedCommands(t *testing.T) {
	// Firmware that refuses "+": the driver falls back to one request per command, and remembers.
	srv := serveRaw(t, byCommand(map[string]string{
		"summary": summaryReply(`"GHS 5s":"1000"`) + "\x00",
		"stats":   statsReply(`{"Type":"Antminer T9+"},{"temp1":50}`) + "\x00",
		"pools":   poolsReply(onePool) + "\x00",
	}))
	d := srv.driver(Config{})
	for range 2 {
		if tel := mustPoll(t, d); tel.Hashrate_5SThs != 1 || tel.Model != "Antminer T9+" || len(tel.Pools) != 1 {
			t.Fatalf("telemetry = %v", tel)
		}
	}
	want := []string{"summary+stats+pools", "summary", "stats", "pools", "summary", "stats", "pools"}
	if got := srv.commands(); !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestConnectionClosedWithoutReply(t *testing.T) {
	srv := serveRaw(t, func(string, net.Conn) {})
	if _, err := poll(t, srv.driver(Config{})); !errors.Is(err, miners.ErrUnreachable) || !strings.Contains(err.Error(), "without a reply") {
		t.Fatalf("err = %v", err)
	}
}

// The dial is bounded by DialTimeout, or by ctx's deadline when that comes first, in which case the dialer gets
// ctx itself (no per-request child context).
func TestDialDeadline(t *testing.T) {
	var got context.Context
	var gotDeadline time.Time
	d := New(&pb.Device{MinerId: "m1", Address: "10.0.0.1:4028"}, Config{
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second,
		Dialer: func(ctx context.Context, _, _ string) (net.Conn, error) {
			got = ctx
			gotDeadline, _ = ctx.Deadline()
			return nil, errors.New("refused")
		},
	})
	for _, tc := range []struct {
		name     string
		timeout  time.Duration
		wantSame bool
		want     time.Duration // dial deadline from now
	}{
		{"ctx deadline first", 500 * time.Millisecond, true, 500 * time.Millisecond},
		{"ctx deadline equals DialTimeout", time.Second, true, time.Second},
		{"DialTimeout first", 2 * time.Second, false, time.Second},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		start := time.Now()
		_, _ = d.Poll(ctx)
		cancel()
		if (got == ctx) != tc.wantSame {
			t.Errorf("%s: dialer got ctx itself = %v, want %v", tc.name, got == ctx, tc.wantSame)
		}
		if dl := gotDeadline.Sub(start); dl > tc.want+50*time.Millisecond || dl < tc.want-50*time.Millisecond {
			t.Errorf("%s: dial deadline in %v, want %v", tc.name, dl, tc.want)
		}
	}
}
