package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// recordBackend answers Command with one record and has no CommandView: the API pages the record itself.
type recordBackend struct {
	fakeBackend
	rec *pb.CommandRecord
}

func (b *recordBackend) Command(context.Context, string) (*pb.CommandRecord, error) {
	return b.rec, nil
}

func TestCommandQueryWithoutBackendViews(t *testing.T) {
	rec := &pb.CommandRecord{CommandId: "c1", MinerIds: []string{"a", "b", "c"}, Status: pb.ResultCode_RESULT_CODE_RUNNING,
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT},
		Results: map[string]*pb.MinerResult{
			"a": {MinerId: "a", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED},
			"b": {MinerId: "b", Code: pb.ResultCode_RESULT_CODE_RUNNING},
			"c": {MinerId: "c", Code: pb.ResultCode_RESULT_CODE_TIMEOUT},
		}}
	a := newAPI(t, &recordBackend{rec: rec})
	get := func(query string) (int, map[string]json.RawMessage, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/commands/c1?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(w.Body.Bytes(), &raw)
		return w.Code, raw, w.Body.String()
	}
	code, raw, body := get("summary=1")
	if _, has := raw["results"]; code != 200 || has || string(raw["miners"]) != "3" ||
		!strings.Contains(string(raw["summary"]), `"timeout":1`) {
		t.Fatalf("summary: %d %s", code, body)
	}
	code, raw, body = get("limit=1&results_after=a")
	if code != 200 || !strings.Contains(string(raw["results"]), `"miner_id":"b"`) || string(raw["next_results_after"]) != `"b"` {
		t.Fatalf("page: %d %s", code, body)
	}
	code, _, body = get("results_after=zz")
	if code != http.StatusBadRequest || !strings.Contains(body, "not a miner of command c1") {
		t.Fatalf("unknown results_after: %d %s", code, body)
	}
	code, raw, body = get("")
	if code != 200 || !strings.Contains(string(raw["results"]), `"miner_id":"c"`) || string(raw["miners"]) != "3" {
		t.Fatalf("whole record: %d %s", code, body)
	}
}

// BenchmarkGetCommand10k is the API's work to answer one poll of a 10,000-miner command: the whole record
// (every result as JSON) against ?summary=1. The tracker's side is grains' BenchmarkViewCommandSummary10k and
// BenchmarkCloneCommand10k.
func BenchmarkGetCommand10k(b *testing.B) {
	rec := &pb.CommandRecord{CommandId: "c1", Status: pb.ResultCode_RESULT_CODE_RUNNING, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT},
		Results: map[string]*pb.MinerResult{}, CreatedAtUnixMs: 1000}
	for i := range 10_000 {
		id := fmt.Sprintf("sim0-%d", i)
		rec.MinerIds = append(rec.MinerIds, id)
		r := &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_RUNNING, StartedAtUnixMs: 2000}
		if i%2 == 0 {
			r.Code, r.Message, r.FinishedAtUnixMs = pb.ResultCode_RESULT_CODE_SUCCEEDED, "restart accepted: Restarting cgminer", 2500
		}
		rec.Results[id] = r
	}
	a := newAPI(b, &recordBackend{rec: rec})
	for _, q := range []string{"", "summary=1"} {
		name := "whole"
		if q != "" {
			name = "summary"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/api/v1/commands/c1?"+q, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				a.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Body.String())
				}
				n = w.Body.Len()
			}
			b.ReportMetric(float64(n), "bytes/answer")
		})
	}
}
