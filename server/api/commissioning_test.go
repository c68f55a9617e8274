package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// fakeCommissioning records requests and answers from fixed records.
type fakeCommissioning struct {
	scans    []grains.ScanRequest
	pairings []grains.PairingRequest
	pairing  *pb.PairingRecord
	err      error
}

func (f *fakeCommissioning) StartScan(_ context.Context, r grains.ScanRequest) (grains.ScanStarted, error) {
	f.scans = append(f.scans, r)
	return grains.ScanStarted{ScanID: "scan-1", Node: "n1"}, f.err
}
func (f *fakeCommissioning) Scan(id string) (*pb.ScanRecord, error) {
	if id != "scan-1" {
		return nil, fmt.Errorf("%w: %s", grains.ErrUnknownScan, id)
	}
	return &pb.ScanRecord{ScanId: id, NodeId: "n1", State: "done", Total: 4, Probed: 4, FoundCount: 2,
		Found: []*pb.Device{{MinerId: "a", Protocol: pb.Protocol_PROTOCOL_PROTO}, {MinerId: "b"}}}, nil
}
func (f *fakeCommissioning) Scans(int) ([]*pb.ScanRecord, error) { return nil, nil }
func (f *fakeCommissioning) StartPairing(_ context.Context, r grains.PairingRequest) (grains.PairingStarted, error) {
	f.pairings = append(f.pairings, r)
	return grains.PairingStarted{PairingID: "pair-1", Node: "n1"}, f.err
}
func (f *fakeCommissioning) Pairing(string) (*pb.PairingRecord, error) { return f.pairing, nil }
func (f *fakeCommissioning) DeviceList(status string) ([]grains.DeviceEntry, error) {
	return []grains.DeviceEntry{{Device: &pb.Device{MinerId: "b", NodeId: "n1"}, Status: grains.DevicePaired}}, nil
}

func newCommissioningAPI(t *testing.T, c Commissioning) *API {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AdminToken, cfg.Commissioning = token, c
	a, err := New(cfg, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func call(a *API, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestDiscoveryEndpoints(t *testing.T) {
	f := &fakeCommissioning{}
	a := newCommissioningAPI(t, f)
	code, body := call(a, "POST", "/api/v1/discovery", `{"targets":["10.0.0.0/24"],"protocols":["proto","antminer"],
		"ports":{"antminer_web":[8080]},"credentials":{"password":"pw"}}`)
	if code != 202 || !strings.Contains(body, `"scan_id":"scan-1"`) {
		t.Fatalf("POST /discovery: %d %s", code, body)
	}
	r := f.scans[0]
	if len(r.Protocols) != 2 || r.AntminerWebPorts[0] != 8080 || string(r.Password) != "pw" || r.Username != "root" {
		t.Fatalf("scan request %+v", r)
	}
	for _, bad := range []string{`{"targets":["x"],"protocols":["bitmain"]}`, `{"targets":["x"],"nope":1}`, `not json`} {
		if code, _ := call(a, "POST", "/api/v1/discovery", bad); code != 400 {
			t.Errorf("POST /discovery %s: %d, want 400", bad, code)
		}
	}
	code, body = call(a, "GET", "/api/v1/discovery/scan-1", "")
	var sv scanJSON
	if err := json.Unmarshal([]byte(body), &sv); code != 200 || err != nil || len(sv.Devices) != 2 || sv.Devices[1].Status != "paired" ||
		sv.Devices[0].Status != "discovered" || sv.Progress.Found != 2 {
		t.Fatalf("GET /discovery/scan-1: %d %s", code, body)
	}
	if code, _ := call(a, "GET", "/api/v1/discovery/nope", ""); code != 404 {
		t.Fatalf("unknown scan: %d", code)
	}
	if code, _ := call(a, "GET", "/api/v1/devices?status=owned", ""); code != 400 {
		t.Fatalf("bad status: %d", code)
	}
	if code, body := call(a, "GET", "/api/v1/devices?status=paired", ""); code != 200 || !strings.Contains(body, `"device_id":"b"`) {
		t.Fatalf("devices: %d %s", code, body)
	}
}

func TestPairingEndpoint(t *testing.T) {
	done := &pb.PairingRecord{PairingId: "pair-1", NodeId: "n1", FinishedAtUnixMs: 1, Devices: []*pb.DevicePairing{
		{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}, {MinerId: "b", Code: pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS}}}
	f := &fakeCommissioning{pairing: done}
	a := newCommissioningAPI(t, f)
	code, body := call(a, "POST", "/api/v1/pairings", `{"device_ids":["a","b"],"credentials":{"username":"admin","password":"pw"}}`)
	if code != 200 || !strings.Contains(body, `"wrong_credentials"`) || !strings.Contains(body, `"paired"`) || strings.Contains(body, "pw") {
		t.Fatalf("POST /pairings: %d %s", code, body)
	}
	if r := f.pairings[0]; r.Username != "admin" || string(r.Password) != "pw" {
		t.Fatalf("pairing request %+v", r)
	}
	// The node has not answered: 202 with the pairing pending.
	f.pairing = &pb.PairingRecord{PairingId: "pair-1", Devices: []*pb.DevicePairing{{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_PENDING}}}
	if code, body := call(a, "POST", "/api/v1/pairings", `{"device_ids":["a"],"wait_s":0}`); code != 202 || !strings.Contains(body, `"pending"`) {
		t.Fatalf("pending pairing: %d %s", code, body)
	}
	for _, bad := range []string{`{"device_ids":[]}`, `{"device_ids":["a"],"wait_s":999}`} {
		if code, _ := call(a, "POST", "/api/v1/pairings", bad); code != 400 {
			t.Errorf("POST /pairings %s: %d, want 400", bad, code)
		}
	}
	f.err = fmt.Errorf("%w: it belongs to node n2", grains.ErrOwnedElsewhere)
	if code, _ := call(a, "POST", "/api/v1/pairings", `{"device_ids":["a"]}`); code != 409 {
		t.Fatalf("owned elsewhere: %d, want 409", code)
	}
}

func TestCommissioningUnavailable(t *testing.T) {
	a := newAPI(t, &fakeBackend{})
	for _, op := range [][2]string{{"POST", "/api/v1/discovery"}, {"GET", "/api/v1/discovery"}, {"GET", "/api/v1/discovery/x"},
		{"GET", "/api/v1/devices"}, {"POST", "/api/v1/pairings"}, {"GET", "/api/v1/pairings/x"}} {
		if code, _ := call(a, op[0], op[1], `{}`); code != 503 {
			t.Errorf("%s %s without commissioning: %d, want 503", op[0], op[1], code)
		}
	}
}
