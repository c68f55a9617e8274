package grains

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

func viewRecord() *pb.CommandRecord {
	rec := NewCommandRecord("c1", CommandRequest{Action: pb.Action_ACTION_REBOOT, MinerIDs: []string{"a", "b", "c", "d", "e"}}, time.UnixMilli(1000))
	rec.NodeSeqs["n1"] = 7
	rec.Results["b"].Code = pb.ResultCode_RESULT_CODE_SUCCEEDED
	rec.Results["c"].Code = pb.ResultCode_RESULT_CODE_FAILED
	rec.Results["d"].Code = pb.ResultCode_RESULT_CODE_SUCCEEDED
	delete(rec.Results, "e") // a record without an entry for a miner reads as pending
	return rec
}

func TestViewCommand(t *testing.T) {
	for _, c := range []struct {
		q    CommandQuery
		ids  []string
		next string
	}{
		{CommandQuery{}, []string{"a", "b", "c", "d", "e"}, ""},
		{CommandQuery{Limit: 2}, []string{"a", "b"}, "b"},
		{CommandQuery{After: "b", Limit: 2}, []string{"c", "d"}, "d"},
		{CommandQuery{After: "d", Limit: 2}, []string{"e"}, ""},
		{CommandQuery{After: "e"}, []string{}, ""},
		{CommandQuery{Limit: 5}, []string{"a", "b", "c", "d", "e"}, ""},
		{CommandQuery{Statuses: []string{"succeeded"}, Limit: 1}, []string{"b"}, "b"},
		{CommandQuery{Statuses: []string{"succeeded"}, After: "b", Limit: 1}, []string{"d"}, ""},
		{CommandQuery{Statuses: []string{"failed", "pending"}}, []string{"a", "c", "e"}, ""},
		{CommandQuery{Statuses: []string{"timeout"}}, []string{}, ""},
	} {
		t.Run(fmt.Sprintf("%+v", c.q), func(t *testing.T) {
			rec := viewRecord()
			v, err := ViewCommand(rec, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range v.Results {
				got = append(got, r.GetMinerId())
			}
			if !slices.Equal(got, c.ids) || v.NextAfter != c.next || v.Results == nil {
				t.Fatalf("page %v next %q, want %v next %q", got, v.NextAfter, c.ids, c.next)
			}
			want := map[string]int{"pending": 2, "running": 0, "succeeded": 2, "failed": 1, "timeout": 0}
			if fmt.Sprint(v.Counts) != fmt.Sprint(want) || v.Miners != 5 {
				t.Fatalf("counts %v miners %d, want %v 5", v.Counts, v.Miners, want)
			}
			if h := v.Command; h.GetCommandId() != "c1" || h.GetMinerIds() != nil || h.GetResults() != nil || h.GetNodeSeqs()["n1"] != 7 {
				t.Fatalf("header %v", h)
			}
			if len(rec.GetMinerIds()) != 5 || len(rec.GetResults()) != 4 {
				t.Fatal("the record was changed")
			}
			if len(v.Results) > 0 {
				v.Results[0].Message = "changed" // a copy: the record stays as it was
				if rec.GetResults()[v.Results[0].GetMinerId()].GetMessage() == "changed" {
					t.Fatal("the page shares results with the record")
				}
			}
		})
	}
	v, err := ViewCommand(viewRecord(), CommandQuery{Summary: true})
	if err != nil || v.Results != nil || v.Counts["succeeded"] != 2 || v.Miners != 5 {
		t.Fatalf("summary: %+v %v", v, err)
	}
}

func TestViewCommandRefusesBadQueries(t *testing.T) {
	for _, q := range []CommandQuery{
		{After: "zz"},
		{Limit: -1},
		{Limit: MaxResultsLimit + 1},
		{Statuses: []string{"done"}},
		{Summary: true, Limit: 1},
		{Summary: true, After: "a"},
		{Summary: true, Statuses: []string{"failed"}},
	} {
		if _, err := ViewCommand(viewRecord(), q); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%+v: %v, want ErrInvalidQuery", q, err)
		}
	}
}

// BenchmarkViewCommandSummary10k is the tracker's work for one ?summary=1 poll of a 10,000-miner command,
// against BenchmarkCloneCommand10k, what a poll of the whole record costs it (the API then encodes it all).
func BenchmarkViewCommandSummary10k(b *testing.B) {
	rec := bigRecord(10_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ViewCommand(rec, CommandQuery{Summary: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCloneCommand10k(b *testing.B) {
	rec := bigRecord(10_000)
	b.ReportAllocs()
	for b.Loop() {
		_ = cloneRecord(rec)
	}
}

// cloneRecord is what the tracker answers a GET of the whole record with.
func cloneRecord(rec *pb.CommandRecord) *pb.CommandRecord {
	return proto.Clone(rec).(*pb.CommandRecord)
}

func bigRecord(n int) *pb.CommandRecord {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sim0-%d", i)
	}
	rec := NewCommandRecord("c1", CommandRequest{Action: pb.Action_ACTION_REBOOT, MinerIDs: ids}, time.UnixMilli(1000))
	for i, id := range ids {
		if i%2 == 0 {
			r := rec.Results[id]
			r.Code, r.Message, r.StartedAtUnixMs, r.FinishedAtUnixMs = pb.ResultCode_RESULT_CODE_SUCCEEDED, "restart accepted: Restarting cgminer", 2000, 2500
		}
	}
	return rec
}
