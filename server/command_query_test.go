package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// pagedCommand is GET /api/v1/commands/{id} with query parameters.
type pagedCommand struct {
	Status     string         `json:"status"`
	FinishedAt *string        `json:"finished_at"`
	Summary    map[string]int `json:"summary"`
	Miners     int            `json:"miners"`
	Results    []struct {
		MinerID string `json:"miner_id"`
		Status  string `json:"status"`
	} `json:"results"`
	NextResultsAfter string `json:"next_results_after"`
}

func (h *harness) commandQuery(id, query string) (pagedCommand, map[string]json.RawMessage) {
	h.t.Helper()
	var out pagedCommand
	code, b := h.do("GET", "/api/v1/commands/"+id+"?"+query, "", &out)
	if code != http.StatusOK {
		h.t.Fatalf("GET command ?%s: %d %s", query, code, b)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		h.t.Fatal(err)
	}
	return out, raw
}

func ids(p pagedCommand) []string {
	var out []string
	for _, r := range p.Results {
		out = append(out, r.MinerID)
	}
	return out
}

// TestCommandSummaryAndPages follows a command with ?summary=1 and pages of its results, while it runs (the
// tracker's live record) and after it finished (the stored record).
func TestCommandSummaryAndPages(t *testing.T) {
	h := newHarness(t)
	miners := []string{"m1", "m2", "m3", "m4", "m5"}
	var samples []*pb.Telemetry
	for _, m := range miners {
		samples = append(samples, h.sample(m, 100))
	}
	h.upload("n1", 1, samples...)
	c, _ := h.openControl("n1", 0)
	id := h.issue(`{"miner_ids":["m1","m2","m3","m4","m5"],"action":"reboot"}`)
	cmd := c.nextCommand()
	c.ack(cmd, pb.ResultCode_RESULT_CODE_RUNNING)
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, false, "m1", "m3")
	c.result(cmd, pb.ResultCode_RESULT_CODE_FAILED, false, "m4")
	waitFor(t, func() bool { return h.command(id).Summary["succeeded"] == 2 && h.command(id).Summary["failed"] == 1 }, "partial results")

	for _, when := range []string{"running", "finished"} {
		s, raw := h.commandQuery(id, "summary=1")
		if _, has := raw["results"]; has {
			t.Fatalf("%s: summary has results: %s", when, raw["results"])
		}
		if s.Miners != 5 || s.Summary["succeeded"]+s.Summary["failed"]+s.Summary["running"] != 5 {
			t.Fatalf("%s: summary %+v", when, s)
		}
		if when == "running" && (s.Status != "running" || s.FinishedAt != nil || s.Summary["running"] != 2) {
			t.Fatalf("running: summary %+v", s)
		}
		if when == "finished" && (s.Status != "failed" || s.FinishedAt == nil || s.Summary["succeeded"] != 4) {
			t.Fatalf("finished: summary %+v", s)
		}

		// Pages of two, in the command's order, until next_results_after is empty.
		var all []string
		after := ""
		for page := 0; ; page++ {
			q := "limit=2"
			if after != "" {
				q += "&results_after=" + url.QueryEscape(after)
			}
			p, raw := h.commandQuery(id, q)
			if p.Miners != 5 || len(p.Results) > 2 {
				t.Fatalf("%s page %d: %+v", when, page, p)
			}
			if _, has := raw["summary"]; !has {
				t.Fatalf("%s page %d without counts", when, page)
			}
			all = append(all, ids(p)...)
			if p.NextResultsAfter == "" {
				break
			}
			if p.NextResultsAfter != all[len(all)-1] || page > 3 {
				t.Fatalf("%s page %d: next %q after %v", when, page, p.NextResultsAfter, all)
			}
			after = p.NextResultsAfter
		}
		if !slices.Equal(all, miners) {
			t.Fatalf("%s: pages gave %v, want %v", when, all, miners)
		}

		// A filtered page, and a page past the last miner.
		p, _ := h.commandQuery(id, "status=failed,timeout")
		if got := ids(p); !slices.Equal(got, []string{"m4"}) || p.NextResultsAfter != "" {
			t.Fatalf("%s: failed results %v (next %q)", when, got, p.NextResultsAfter)
		}
		want, next := "m3", "" // running: m3 is the only succeeded miner after m1
		if when == "finished" {
			want, next = "m2", "m2" // m2, then m3 and m5 on the next pages
		}
		p, _ = h.commandQuery(id, "status=succeeded&limit=1&results_after=m1")
		if got := ids(p); !slices.Equal(got, []string{want}) || p.NextResultsAfter != next {
			t.Fatalf("%s: succeeded after m1 %v (next %q), want [%s] (next %q)", when, got, p.NextResultsAfter, want, next)
		}
		p, raw = h.commandQuery(id, "results_after=m5")
		if string(raw["results"]) != "[]" || p.NextResultsAfter != "" {
			t.Fatalf("%s: after the last miner: results %s, next %q", when, raw["results"], p.NextResultsAfter)
		}

		if when == "running" {
			c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2", "m5")
			h.waitCommand(id, "failed")
		}
	}
}

func TestCommandQueryRefusesMalformedParameters(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 100), h.sample("m2", 100))
	id := h.issue(`{"miner_ids":["m1","m2"],"action":"reboot"}`)
	for _, c := range []struct{ query, want string }{
		{"summary=yes", "summary must be 1, true, 0 or false"},
		{"summary=", "summary must be"},
		{"limit=0", "limit must be an integer in [1, 10000]"},
		{"limit=-1", "limit must be"},
		{"limit=abc", "limit must be"},
		{"limit=10001", "limit must be"},
		{"limit=99999999999999999999", "limit must be"},
		{"limit=1&limit=2", `"limit" given 2 times`},
		{"results_after=nope", `results_after "nope" is not a miner of command`},
		{"results_after=" + url.QueryEscape("a/b"), "results_after"},
		{"results_after=", "results_after"},
		{"results_after=" + strings.Repeat("x", 300), "results_after"},
		{"status=bogus", `status "bogus"`},
		{"status=", `status ""`},
		{"status=failed,,timeout", `status ""`},
		{"summary=1&limit=5", "summary=1 returns no results"},
		{"summary=1&status=failed", "summary=1 returns no results"},
		{"summery=1", `unknown query parameter "summery"`},
	} {
		var out struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		code, b := h.do("GET", "/api/v1/commands/"+id+"?"+c.query, "", nil)
		_ = json.Unmarshal(b, &out)
		if code != http.StatusBadRequest || out.Error.Code != "bad_request" || !strings.Contains(out.Error.Message, c.want) {
			t.Errorf("?%s: %d %s; want 400 bad_request containing %q", c.query, code, b, c.want)
		}
	}
	if code, b := h.do("GET", "/api/v1/commands/nope?summary=1", "", nil); code != http.StatusNotFound {
		t.Errorf("summary of an unknown command: %d %s", code, b)
	}
	// summary=0 is the whole record's fields with every result, as a page of all.
	p, _ := h.commandQuery(id, "summary=0")
	if fmt.Sprint(ids(p)) != "[m1 m2]" || p.Miners != 2 {
		t.Errorf("summary=0: %+v", p)
	}
}
