package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func start(t *testing.T, cfg Config) (*Fleet, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(epoch)
	if cfg.Clock == nil {
		cfg.Clock = fake
	}
	f, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, fake
}

// call sends one request and returns the raw reply; err is set when the connection fails.
func call(addr, cmd, param string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req, _ := json.Marshal(map[string]string{"command": cmd, "parameter": param})
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// decode checks the bmminer framing (one trailing NUL) and decodes the JSON.
func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	body, ok := bytes.CutSuffix(raw, []byte{0})
	if !ok || bytes.IndexByte(body, 0) >= 0 {
		t.Fatalf("reply does not end with exactly one NUL: %q", raw)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, body)
	}
	return v
}

func mustCall(t *testing.T, m *Miner, cmd, param string) map[string]any {
	t.Helper()
	raw, err := call(m.Addr(), cmd, param)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return decode(t, raw)
}

// statusOf returns the STATUS letter and Msg of a plain reply.
func statusOf(v map[string]any) (string, string) {
	s := v["STATUS"].([]any)[0].(map[string]any)
	return s["STATUS"].(string), s["Msg"].(string)
}

func TestDevicesAndDeterminism(t *testing.T) {
	a, _ := start(t, Config{Count: 8, Seed: 42})
	b, _ := start(t, Config{Count: 8, Seed: 42})
	c, _ := start(t, Config{Count: 8, Seed: 43})
	da, db, dc := a.Devices(), b.Devices(), c.Devices()
	models := map[string]bool{}
	same := 0
	for i := range da {
		if da[i].MinerId != "sim-"+strconv.Itoa(i) || a.Miner(da[i].MinerId) != a.Miners()[i] {
			t.Errorf("device %d id %q", i, da[i].MinerId)
		}
		if da[i].Model != db[i].Model || da[i].Serial != db[i].Serial || da[i].Mac != db[i].Mac {
			t.Errorf("same seed, different identity: %v vs %v", da[i], db[i])
		}
		if da[i].Serial == dc[i].Serial {
			same++
		}
		if _, err := call(da[i].Address, "version", ""); err != nil {
			t.Errorf("miner %d not listening at %s: %v", i, da[i].Address, err)
		}
		models[da[i].Model] = true
	}
	if same > 0 || len(models) < 2 {
		t.Errorf("seed does not vary identity: %d serials shared, models %v", same, models)
	}
	if a.Miner("nope") != nil {
		t.Error("Miner of an unknown id is not nil")
	}
}

func TestPerMinerIP(t *testing.T) {
	// Find a port free on the first address, then put every miner on it, each on its own IP.
	ln, err := net.Listen("tcp", "127.1.0.1:0")
	if err != nil {
		t.Skipf("loopback alias not available: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	f, _ := start(t, Config{Count: 5, PerMinerIP: true, Port: port})
	for i, d := range f.Devices() {
		want := net.JoinHostPort("127.1.0."+strconv.Itoa(i+1), strconv.Itoa(port))
		if d.Address != want {
			t.Errorf("miner %d at %s, want %s", i, d.Address, want)
		}
		v := decode(t, must(call(d.Address, "summary", "")))
		if st, _ := statusOf(v); st != "S" {
			t.Errorf("miner %d: %v", i, v)
		}
	}
	f2, _ := start(t, Config{Count: 3, PerMinerIP: true, BaseIP: "127.2.0.254"})
	if got := f2.Devices()[2].Address; !strings.HasPrefix(got, "127.2.1.0:") {
		t.Errorf("third miner from 127.2.0.254 at %s, want 127.2.1.0", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReplyShapes(t *testing.T) {
	f, fake := start(t, Config{Seed: 1})
	m := f.Miners()[0]
	fake.Advance(time.Hour)

	v := mustCall(t, m, "summary+stats+pools", "")
	if _, ok := v["STATUS"]; ok {
		t.Fatal("joined reply has a top-level STATUS")
	}
	for _, k := range []string{"summary", "stats", "pools"} {
		inner := v[k].([]any)[0].(map[string]any)
		if st, _ := statusOf(inner); st != "S" {
			t.Errorf("%s: %v", k, inner)
		}
	}
	sum := v["summary"].([]any)[0].(map[string]any)["SUMMARY"].([]any)[0].(map[string]any)
	if _, isString := sum["GHS 5s"].(string); !isString || sum["Elapsed"].(float64) != 3600 {
		t.Errorf("summary %v: want GHS 5s as a string and Elapsed 3600", sum)
	}
	stats := v["stats"].([]any)[0].(map[string]any)["STATS"].([]any)
	if len(stats) != 2 || stats[0].(map[string]any)["Type"] != m.Snapshot().Model || stats[1].(map[string]any)["temp_pcb1"] == nil {
		t.Errorf("stats %v", stats)
	}
	if st, msg := statusOf(mustCall(t, m, "bogus", "")); st != "E" || msg != "Invalid command" {
		t.Errorf("bogus command: %s %s", st, msg)
	}
	ver := mustCall(t, m, "version", "")["VERSION"].([]any)[0].(map[string]any)
	devs := mustCall(t, m, "devs", "")["DEVS"].([]any)
	if ver["Type"] != m.Snapshot().Model || len(devs) != len(m.Snapshot().BoardTemps) {
		t.Errorf("version %v devs %v", ver, devs)
	}
}

func TestJoinedWriteRefused(t *testing.T) {
	f, _ := start(t, Config{})
	m := f.Miners()[0]
	if st, msg := statusOf(mustCall(t, m, "summary+restart", "")); st != "E" || !strings.Contains(msg, "'restart' cannot be joined") {
		t.Errorf("joined write: %s %s", st, msg)
	}
	log := m.WriteLog()
	if len(log) != 1 || log[0].Command != "restart" || log[0].Accepted || m.Snapshot().Rebooting {
		t.Errorf("write log %+v", log)
	}
}

func TestStateCommands(t *testing.T) {
	f, fake := start(t, Config{})
	m := f.Miners()[0]
	fake.Advance(10 * time.Minute)
	before := m.Snapshot()
	if !before.Mining || before.HashrateTHs == 0 || before.Pools[0].Accepted == 0 || before.Uptime != 10*time.Minute {
		t.Fatalf("fresh miner %+v", before)
	}

	mustCall(t, m, "pause", "")
	fake.Advance(10 * time.Minute)
	paused := m.Snapshot()
	if !paused.Paused || paused.Mining || paused.HashrateTHs != 0 || paused.Pools[0].Accepted != before.Pools[0].Accepted || paused.PowerW >= before.PowerW {
		t.Errorf("paused %+v", paused)
	}
	mustCall(t, m, "resume", "")
	if st, _ := statusOf(mustCall(t, m, "curtail", "sleep")); st != "S" {
		t.Fatal("curtail sleep refused")
	}
	asleep := m.Snapshot()
	if !asleep.Sleeping || asleep.WorkMode != "sleep" || asleep.HashrateTHs != 0 || len(asleep.Fans) != 0 {
		t.Errorf("asleep %+v", asleep)
	}
	if st, _ := statusOf(mustCall(t, m, "curtail", "nap")); st != "E" {
		t.Error("curtail with a bad parameter accepted")
	}
	mustCall(t, m, "curtail", "wakeup")
	if s := m.Snapshot(); !s.Mining || s.WorkMode != "normal" {
		t.Errorf("awake %+v", s)
	}
	var got []string
	for _, w := range m.WriteLog() {
		got = append(got, w.Command+" "+w.Parameter+" "+map[bool]string{true: "ok", false: "refused"}[w.Accepted])
	}
	want := []string{"pause  ok", "resume  ok", "curtail sleep ok", "curtail nap refused", "curtail wakeup ok"}
	if !slices.Equal(got, want) {
		t.Errorf("write log %q, want %q", got, want)
	}
}

func TestPoolCommands(t *testing.T) {
	f, _ := start(t, Config{})
	m := f.Miners()[0]
	ok := func(cmd, param string) {
		t.Helper()
		if st, msg := statusOf(mustCall(t, m, cmd, param)); st != "S" {
			t.Fatalf("%s %q refused: %s", cmd, param, msg)
		}
	}
	refused := func(cmd, param, want string) {
		t.Helper()
		if st, msg := statusOf(mustCall(t, m, cmd, param)); st != "E" || !strings.Contains(msg, want) {
			t.Errorf("%s %q: %s %q, want refusal %q", cmd, param, st, msg, want)
		}
	}
	urls := func() (out []string) {
		for _, p := range m.Snapshot().Pools {
			out = append(out, p.URL[len("stratum+tcp://"):len("stratum+tcp://")+6]+map[bool]string{true: "*", false: ""}[p.Active]+strconv.Itoa(p.Priority))
		}
		return out
	}

	ok("addpool", `stratum+tcp://pool-d.x:1,us\,er,pa\\ss`)
	if p := m.Snapshot().Pools[3]; p.User != "us,er" || p.Priority != 3 {
		t.Errorf("added pool %+v", p)
	}
	refused("addpool", "only-url", "Invalid addpool details")
	refused("addpool", "", "Missing addpool details")
	refused("removepool", "0", "Cannot remove active pool")
	refused("switchpool", "9", "Invalid pool id 9 - range is 0 - 3")
	refused("switchpool", "", "Missing pool id")
	ok("switchpool", "2")
	if got := urls(); !slices.Equal(got, []string{"pool-a1", "pool-b2", "pool-c*0", "pool-d3"}) {
		t.Errorf("after switchpool 2: %v", got)
	}
	ok("removepool", "0")
	ok("poolpriority", "2,1")
	if got := urls(); !slices.Equal(got, []string{"pool-b2", "pool-c1", "pool-d*0"}) {
		t.Errorf("after removepool 0, poolpriority 2,1: %v", got)
	}
	refused("poolpriority", "1,1", "Duplicate pool specified 1")
	ok("disablepool", "2") // the active pool
	if got := urls(); got[1] != "pool-c*1" {
		t.Errorf("disabling the top pool should fail over: %v", got)
	}
	ok("disablepool", "1")
	refused("disablepool", "0", "Cannot disable last active pool")
	ok("enablepool", "2")
	if got := urls(); got[2] != "pool-d*0" {
		t.Errorf("after enablepool: %v", got)
	}
}

func TestRestartUsesSimClock(t *testing.T) {
	f, fake := start(t, Config{RebootDuration: time.Minute})
	m := f.Miners()[0]
	fake.Advance(time.Hour)
	if _, msg := statusOf(mustCall(t, m, "restart", "")); msg != "Restarting cgminer" {
		t.Fatalf("restart: %s", msg)
	}
	if _, err := call(m.Addr(), "summary", ""); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("during reboot: %v, want connection refused", err)
	}
	if s := m.Snapshot(); !s.Rebooting || s.Mining {
		t.Errorf("rebooting %+v", s)
	}
	fake.Advance(59 * time.Second)
	if _, err := call(m.Addr(), "summary", ""); err == nil {
		t.Fatal("back before RebootDuration")
	}
	fake.Advance(time.Second)
	if s := m.Snapshot(); s.Rebooting || !s.Mining || s.Uptime != 0 {
		t.Errorf("after reboot %+v", s)
	}
	mustCall(t, m, "summary", "")
}

func TestFaults(t *testing.T) {
	f, _ := start(t, Config{SlowDelay: 100 * time.Millisecond})
	m := f.Miners()[0]

	m.Down()
	if _, err := call(m.Addr(), "summary", ""); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: %v", err)
	}
	m.Up()
	mustCall(t, m, "summary", "")

	m.SetFault(FaultSlow)
	begin := time.Now()
	mustCall(t, m, "summary", "")
	if d := time.Since(begin); d < 100*time.Millisecond {
		t.Errorf("slow reply after %v", d)
	}

	m.SetFault(FaultMalformed)
	raw := must(call(m.Addr(), "summary", ""))
	if json.Valid(bytes.TrimRight(raw, "\x00")) {
		t.Errorf("malformed fault sent valid JSON %q", raw)
	}

	m.SetFault(FaultFlapping)
	for i := range 4 {
		raw, err := call(m.Addr(), "summary", "")
		if up := i%2 == 0; up != (err == nil && len(raw) > 0) {
			t.Errorf("flapping request %d: %d bytes, %v", i, len(raw), err)
		}
	}

	m.SetFault(FaultHang)
	c, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"command":"summary"}`))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Errorf("hang: read %d bytes, %v", n, err)
	}
	// The hung connection stays open; Close (in Cleanup) must still return, and goleak checks the rest.
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCloseEndsEverything(t *testing.T) {
	f, err := Start(Config{Count: 3, SlowDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ms := f.Miners()
	ms[0].SetFault(FaultHang)
	ms[1].SetFault(FaultSlow)
	if _, err := call(ms[2].Addr(), "restart", ""); err != nil { // leaves a reboot timer on the real clock
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, m := range ms[:2] {
		wg.Go(func() { call(m.Addr(), "summary", "") })
	}
	time.Sleep(50 * time.Millisecond) // let both requests arrive
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a hung and a slow request in flight")
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := call(ms[0].Addr(), "summary", ""); err == nil {
		t.Error("miner still listening after Close")
	}
}

func TestManyMiners(t *testing.T) {
	f, _ := start(t, Config{Count: 1000, Seed: 7})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for _, d := range f.Devices() {
		wg.Go(func() {
			raw, err := call(d.Address, "summary+stats+pools", "")
			if err == nil && !json.Valid(bytes.TrimRight(raw, "\x00")) {
				err = errors.New("invalid reply")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Count: -1}, "Count must be"},
		{Config{Port: 70000}, "Port must be"},
		{Config{Count: 2, Port: 4028}, "cannot share port 4028"},
		{Config{RebootDuration: -time.Second}, "RebootDuration"},
		{Config{SlowDelay: -time.Second}, "SlowDelay"},
		{Config{PerMinerIP: true, BaseIP: "::1"}, "BaseIP must be an IPv4 address"},
		{Config{PerMinerIP: true, BaseIP: "127.255.255.250", Count: 10}, "run past 127.255.255.255"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
		if _, serr := Start(c.cfg); serr == nil {
			t.Errorf("%+v: Start accepted an invalid config", c.cfg)
		}
	}
}
