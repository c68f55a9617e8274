package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef-token"

// fakeBackend records what reached it.
type fakeBackend struct {
	issued []grains.CommandRequest
	page   grains.MinerPage
	err    error
}

func (f *fakeBackend) ListMiners(context.Context, grains.MinerQuery) (grains.MinerPage, error) {
	return f.page, f.err
}
func (f *fakeBackend) Miner(_ context.Context, id string) (grains.MinerRow, error) {
	return grains.MinerRow{}, grains.ErrUnknownMiner
}
func (f *fakeBackend) IssueCommand(_ context.Context, r grains.CommandRequest) (grains.IssuedCommand, error) {
	f.issued = append(f.issued, r)
	return grains.IssuedCommand{CommandID: "c1"}, f.err
}
func (f *fakeBackend) Command(context.Context, string) (*pb.CommandRecord, error) {
	return nil, grains.ErrUnknownCommand
}
func (f *fakeBackend) Nodes(context.Context) (grains.NodesPage, error) {
	return grains.NodesPage{}, f.err
}

func newAPI(t testing.TB, b Backend) *API {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AdminToken = token
	a, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOpenAPIMatchesRoutes: every route served is in the document, and every operation in the document is
// served by exactly that route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	a := newAPI(t, &fakeBackend{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var served []string
	for _, r := range a.Routes() {
		served = append(served, r.Pattern())
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented %v\nserved     %v", documented, served)
	}
	// And the mux really routes each documented operation to its pattern.
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		req := httptest.NewRequest(method, strings.ReplaceAll(path, "{id}", "some-id"), nil)
		if _, pattern := a.Mux().Handler(req); pattern != op {
			t.Errorf("%s %s routed to %q", method, path, pattern)
		}
	}
	// The document served over HTTP is the same document.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	a.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != string(OpenAPI()) {
		t.Fatalf("served openapi: %d", rec.Code)
	}
}

func TestCommandParsingNeverReachesBackendWhenMalformed(t *testing.T) {
	b := &fakeBackend{}
	a := newAPI(t, b)
	post := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/commands", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		a.Handler().ServeHTTP(rec, req)
		return rec
	}
	for _, body := range []string{`{`, `{"action":"nuke","miner_ids":["a"]}`, `{"miner_ids":"a","action":"reboot"}`} {
		if rec := post(body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", body, rec.Code)
		}
	}
	if len(b.issued) != 0 {
		t.Fatalf("malformed requests reached the backend: %v", b.issued)
	}
	rec := post(`{"miner_ids":["a","b"],"action":"set_power_target","power_target_w":2500,"idempotency_key":"k"}`)
	if rec.Code != http.StatusAccepted || rec.Header().Get("Location") != "/api/v1/commands/c1" {
		t.Fatalf("valid command: %d %s", rec.Code, rec.Body)
	}
	got := b.issued[0]
	if got.Action != pb.Action_ACTION_SET_POWER_TARGET || got.PowerTargetW != 2500 || got.IdempotencyKey != "k" || len(got.MinerIDs) != 2 {
		t.Fatalf("backend got %+v", got)
	}
}

func TestBackendErrorsMapToStatus(t *testing.T) {
	get := func(a *API, path string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		a.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if c := get(newAPI(t, &fakeBackend{err: grains.ErrNotRunning}), "/api/v1/miners"); c != 503 {
		t.Errorf("not running: %d", c)
	}
	a := newAPI(t, &fakeBackend{})
	if c := get(a, "/api/v1/miners/x"); c != 404 {
		t.Errorf("unknown miner: %d", c)
	}
	if c := get(a, "/api/v1/miners?limit=-1"); c != 400 {
		t.Errorf("negative limit: %d", c)
	}
	if c := get(a, "/api/v1/miners?offset=abc"); c != 400 {
		t.Errorf("bad offset: %d", c)
	}
}

func TestMinerJSONEscapesAndShapes(t *testing.T) {
	evil := `<img src=x onerror=alert(1)>`
	row := grains.MinerRow{ID: evil, Node: "n1", State: pb.MinerState_MINER_STATE_MINING, LastSeen: time.Unix(100, 0),
		Telemetry: &pb.Telemetry{PollError: evil, Pools: []*pb.Pool{{Url: "u", Password: "pw", Active: true}}}}
	b := &fakeBackend{page: grains.MinerPage{Total: 1, Items: []grains.MinerRow{row}, AsOf: time.Unix(110, 0), Counts: map[string]int{}}}
	a := newAPI(t, b)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/miners", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	a.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	if strings.Contains(body, "<img") || strings.Contains(body, "pw") {
		t.Fatalf("unescaped markup or password in %s", body)
	}
	var out struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	m := out.Items[0]
	if m["id"] != evil || m["last_seen_age_s"] != 10.0 || m["pool"] != "u" || m["state"] != "mining" {
		t.Fatalf("row %v", m)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("empty token accepted")
	}
	c.AdminToken = "short"
	if err := c.Validate(); err == nil {
		t.Fatal("short token accepted")
	}
	c.AdminToken = token
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
