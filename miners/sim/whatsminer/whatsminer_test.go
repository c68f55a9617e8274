package whatsminer

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock.NewFake(time.Now())
	}
	f, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// rawV2 sends one v2 request and returns the reply.
func rawV2(t *testing.T, addr string, req string) map[string]any {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite() // a truncated request ends here
	body, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	return out
}

func TestV2ClearWriteRefusedAndLogged(t *testing.T) {
	f := start(t, Config{})
	m := f.Miners()[0]
	rep := rawV2(t, m.AddrV2(), `{"cmd":"power_off","respbefore":"true"}`)
	if rep["STATUS"] != "E" || rep["Code"] != float64(wmapi.CodePermission) {
		t.Fatalf("reply %v", rep)
	}
	log := m.WriteLog()
	if len(log) != 1 || log[0].Accepted || log[0].Command != "power_off" || log[0].Reason != "not encrypted" || !strings.HasPrefix(log[0].Remote, "127.0.0.1:") {
		t.Fatalf("log %+v", log)
	}
	if m.Snapshot().PoweredOff {
		t.Fatal("a clear write was carried out")
	}
}

func TestV2TokenAndGarbage(t *testing.T) {
	f := start(t, Config{})
	m := f.Miners()[0]
	rep := rawV2(t, m.AddrV2(), `{"cmd":"get_token"}`)
	msg, _ := rep["Msg"].(map[string]any)
	if rep["Code"] != float64(wmapi.CodeTokenOK) || len(msg["salt"].(string)) != 8 || len(msg["newsalt"].(string)) != 8 || msg["time"] == "" {
		t.Fatalf("get_token %v", rep)
	}
	for req, code := range map[string]float64{
		`{"cmd":`:                     wmapi.CodeInvalidJSON,
		`{"cmd":"frobnicate"}`:        wmapi.CodeInvalidCommand,
		`{"enc":1,"data":"%%%"}`:      wmapi.CodeBase64Error,
		`{"enc":1,"data":"QUJDRA=="}`: wmapi.CodeBase64Error, // not whole blocks
		`{"enc":1,"data":"` + wmapi.Seal([32]byte{9}, []byte(`{"cmd":"reboot","token":"x"}`)) + `"}`: wmapi.CodeTokenError,
	} {
		if rep := rawV2(t, m.AddrV2(), req); rep["STATUS"] != "E" || rep["Code"] != code {
			t.Fatalf("%s: %v, want code %v", req, rep, code)
		}
	}
	if m.Snapshot().API.Rebooting {
		t.Fatal("garbage rebooted the miner")
	}
}

func TestPerMinerIP(t *testing.T) {
	f := start(t, Config{Count: 2, PerMinerIP: true, BaseIP: "127.51.7.1", PortV2: 24028, PortV3: 24433, StatePort: 34028})
	devs := f.Devices(2)
	if devs[0].GetAddress() != "127.51.7.1:24028" || devs[1].GetAddress() != "127.51.7.2:24028" || devs[0].GetProtocol() != pb.Protocol_PROTOCOL_WHATSMINER {
		t.Fatalf("devices %v", devs)
	}
	if f.Devices(3)[1].GetAddress() != "127.51.7.2:24433" {
		t.Fatalf("v3 %v", f.Devices(3)[1])
	}
	if rep := rawV2(t, devs[1].GetAddress(), `{"cmd":"summary"}`); rep["SUMMARY"] == nil {
		t.Fatalf("summary %v", rep)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Count: -1},
		{PortV2: 4028},
		{PerMinerIP: true, PortV2: 4433},
		{TokenTTL: -time.Second},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestV3OversizedRequestClosed: a request frame announcing more than MaxRequestBytes is not read; the
// connection is closed without a reply.
func TestV3OversizedRequestClosed(t *testing.T) {
	f := start(t, Config{})
	c, err := net.DialTimeout("tcp", f.Miners()[0].AddrV3(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte{0, 0, 0, 0x10}); err != nil { // 256 MiB announced
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 16)); err != io.EOF || n != 0 {
		t.Fatalf("read %d bytes, err %v: want the connection closed", n, err)
	}
}
