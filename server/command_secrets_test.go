package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// TestPoolPasswordsSealedToPairMembers: update_pools' pool password is sealed at the API to every node that
// owns each named miner — both members of a warm-standby pair, the one node otherwise — with the miner and
// the pool's purpose bound in. The record keeps envelopes only; each member's real key opens its own
// envelope and no other member's. A retry with the same idempotency key is recognised; a password that
// cannot be sealed (the owner is revoked) refuses the command.
func TestPoolPasswordsSealedToPairMembers(t *testing.T) {
	h := newPairHarness(t)
	h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m3"]}`)
	const secret = "pair-pool-s3cret"
	body := `{"miner_ids":["m1","m3"],"action":"update_pools","idempotency_key":"pools-1","pools":[` +
		`{"url":"stratum+tcp://pool.example:3333","user":"acct.w","password":"` + secret + `","priority":0},` +
		`{"url":"stratum+tcp://backup.example:3333","user":"acct.w","password":"` + secret + `-2","priority":1}]}`
	id := h.issue(body)
	rec, err := h.srv.fleet.Command(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	spec := rec.GetSpec()
	for _, p := range spec.GetPools() {
		if p.GetPassword() != "" {
			t.Fatalf("record keeps a plaintext: %v", p)
		}
	}
	// 2 miners × 2 pools × 2 members.
	if len(spec.GetSealed()) != 8 {
		t.Fatalf("%d sealed secrets, want 8", len(spec.GetSealed()))
	}
	seen := map[string]bool{}
	for _, s := range spec.GetSealed() {
		env, err := sealing.Parse(s.GetEnvelope())
		if err != nil {
			t.Fatal(err)
		}
		if env.DeviceID != s.GetMinerId() || env.Purpose != s.GetPurpose() {
			t.Fatalf("envelope bound to %s/%s, listed as %s/%s", env.DeviceID, env.Purpose, s.GetMinerId(), s.GetPurpose())
		}
		seen[env.NodeID+"/"+env.DeviceID+"/"+env.Purpose] = true
		want := secret
		if env.Purpose == sealing.PoolPassword(1) {
			want += "-2"
		}
		pt, err := sealing.Open(h.keys[env.NodeID], env, env.NodeID, env.DeviceID, env.Purpose)
		if err != nil || string(pt) != want {
			t.Fatalf("%s cannot open its own envelope: %v", env.NodeID, err)
		}
		for _, other := range []string{"na", "nb", "nc"} {
			if other == env.NodeID {
				continue
			}
			for _, as := range []string{other, env.NodeID} {
				if _, err := sealing.Open(h.keys[other], env, as, env.DeviceID, env.Purpose); err == nil {
					t.Fatalf("node %s's key opened %s's envelope (as %s)", other, env.NodeID, as)
				}
			}
		}
	}
	for _, n := range []string{"na", "nb"} {
		for _, m := range []string{"m1", "m3"} {
			for _, p := range []string{sealing.PoolPassword(0), sealing.PoolPassword(1)} {
				if !seen[n+"/"+m+"/"+p] {
					t.Fatalf("no envelope for %s/%s/%s in %v", n, m, p, seen)
				}
			}
		}
	}
	if _, b := h.do("GET", "/api/v1/commands/"+id, "", nil); strings.Contains(string(b), secret) {
		t.Fatalf("command view shows the plaintext: %s", b)
	}

	// The same request again is the same command.
	var again struct {
		CommandID string `json:"command_id"`
	}
	if code, b := h.do("POST", "/api/v1/commands", body, &again); code != http.StatusAccepted || again.CommandID != id {
		t.Fatalf("idempotent retry: %d %s", code, b)
	}

	// An unpaired device: its one node.
	id = h.issue(`{"miner_ids":["m9"],"action":"update_pools","pools":[{"url":"stratum+tcp://p:1","user":"u","password":"solo","priority":0}]}`)
	rec, err = h.srv.fleet.Command(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.GetSpec().GetSealed(); len(got) != 1 {
		t.Fatalf("sealed %v", got)
	} else if env, err := sealing.Parse(got[0].GetEnvelope()); err != nil || env.NodeID != "nc" {
		t.Fatalf("m9's envelope: %v %v", env, err)
	}

	// A pool without a password seals nothing; other actions are untouched.
	id = h.issue(`{"miner_ids":["m9"],"action":"update_pools","pools":[{"url":"stratum+tcp://p:1","user":"u","priority":0}]}`)
	if rec, err = h.srv.fleet.Command(context.Background(), id); err != nil || len(rec.GetSpec().GetSealed()) != 0 {
		t.Fatalf("no password: %v %v", rec.GetSpec(), err)
	}

	// A device whose node is revoked: nothing can be sealed to it, the command is refused.
	if err := h.srv.fleet.RegisterDevices(context.Background(), []*pb.Device{{MinerId: "m7", NodeId: "nr"}}); err != nil {
		t.Fatal(err)
	}
	code, b := h.do("POST", "/api/v1/commands", `{"miner_ids":["m7"],"action":"update_pools","pools":[{"url":"stratum+tcp://p:1","user":"u","password":"x1","priority":0}]}`, nil)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "nr") {
		t.Fatalf("revoked owner: %d %s", code, b)
	}
}
