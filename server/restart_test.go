package server

import (
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TestRestartFindsEverything runs a server on a real Badger directory, stops it, and starts a new one on the
// same directory: devices, telemetry, command records and the node's seq counter and queue survive.
func TestRestartFindsEverything(t *testing.T) {
	dir := t.TempDir()
	onDisk := func(c *Config) { c.DataDir = dir }

	h := newHarness(t, onDisk)
	h.upload("n1", 1, h.sample("m1", 42), h.sample("m2", 43))
	c, _ := h.openControl("n1", 0)
	done := h.issue(`{"miner_ids":["m1"],"action":"reboot","idempotency_key":"once"}`)
	cmd := c.nextCommand()
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	h.waitCommand(done, "succeeded")
	open := h.issue(`{"miner_ids":["m2"],"action":"stop"}`) // seq 2, never answered
	if cmd := c.nextCommand(); cmd.GetMonotonicSeq() != 2 {
		t.Fatalf("second command seq %d", cmd.GetMonotonicSeq())
	}
	c.close()
	h.close()

	h2 := newHarness(t, onDisk)
	l := h2.miners("")
	if l.Total != 2 || l.Items[0].HashrateThs != 42 || !l.Items[0].Stale {
		t.Fatalf("after restart: %+v", l)
	}
	if v := h2.command(done); v.Status != "succeeded" {
		t.Fatalf("finished command after restart: %+v", v)
	}
	if v := h2.command(open); v.Status != "pending" || v.NodeSeqs["n1"] != 2 {
		t.Fatalf("open command after restart: %+v", v)
	}
	// Dedup marks survived: batch 1 again is a duplicate.
	h2.upload("n1", 1, h2.sample("m1", 1))
	if l := h2.miners(""); l.Items[0].HashrateThs != 42 {
		t.Fatalf("batch 1 re-applied after restart: %+v", l.Items[0])
	}
	// The queue and counter survived: the node reconnects with mark 1, gets seq 2 again, and new commands
	// continue at 3.
	c2, ack := h2.openControl("n1", 1)
	if ack.GetNextSeq() != 3 || len(ack.GetDevices()) != 2 {
		t.Fatalf("hello_ack after restart %v", ack)
	}
	if r := c2.nextCommand(); r.GetMonotonicSeq() != 2 || r.GetCommandId() != open {
		t.Fatalf("re-sent %v", r)
	}
	h2.issue(`{"miner_ids":["m1"],"action":"start"}`)
	if r := c2.nextCommand(); r.GetMonotonicSeq() != 3 {
		t.Fatalf("new command seq %d, want 3", r.GetMonotonicSeq())
	}
	// The idempotency key survived.
	var again struct {
		CommandID string `json:"command_id"`
	}
	if code, _ := h2.do("POST", "/api/v1/commands", `{"miner_ids":["m1"],"action":"reboot","idempotency_key":"once"}`, &again); code != 202 || again.CommandID != done {
		t.Fatalf("idempotency after restart: %d %s", code, again.CommandID)
	}
}
