package grains

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

func testPairRegistry() pairRegistry {
	recs := map[string]*pb.NodeRecord{
		"a":     {NodeId: "a", OrgId: "o", Site: "s", Confirmed: true, CredentialPublicKey: []byte{1}},
		"b":     {NodeId: "b", OrgId: "o", Site: "s", Confirmed: true, CredentialPublicKey: []byte{1}},
		"far":   {NodeId: "far", OrgId: "o", Site: "t", Confirmed: true, CredentialPublicKey: []byte{1}},
		"pend":  {NodeId: "pend", OrgId: "o", Site: "s", CredentialPublicKey: []byte{1}},
		"rev":   {NodeId: "rev", OrgId: "o", Site: "s", Confirmed: true, Revoked: true, CredentialPublicKey: []byte{1}},
		"oth":   {NodeId: "oth", OrgId: "x", Site: "s", Confirmed: true, CredentialPublicKey: []byte{1}},
		"nokey": {NodeId: "nokey", OrgId: "o", Site: "s", Confirmed: true},
		"c":     {NodeId: "c", OrgId: "o", Site: "s", Confirmed: true, CredentialPublicKey: []byte{1}},
	}
	owners := map[string]string{"m1": "a", "m2": "b", "m3": "far", "m4": "c"}
	return pairRegistry{
		orgID: "o",
		record: func(n string) (*pb.NodeRecord, error) {
			if r, ok := recs[n]; ok {
				return r, nil
			}
			return nil, fmt.Errorf("node %s: %w", n, store.ErrNotFound)
		},
		owner:        func(id string) (string, bool) { n, ok := owners[id]; return n, ok },
		pairOfNode:   func(n string) string { return map[string]string{"c": "p1"}[n] },
		pairOfDevice: func(id string) string { return map[string]string{"m4": "p1"}[id] },
	}
}

func TestCheckPairDecl(t *testing.T) {
	ok := PairDeclaration{Site: "s", Members: [2]string{"a", "b"}, Standby: "b", Devices: []string{"m1", "m2"}}
	with := func(f func(*PairDeclaration)) PairDeclaration {
		d := ok
		d.Devices = append([]string(nil), ok.Devices...)
		f(&d)
		return d
	}
	for _, c := range []struct {
		name string
		d    PairDeclaration
		want error
	}{
		{"valid", ok, nil},
		{"one member", with(func(d *PairDeclaration) { d.Members[1] = "" }), ErrInvalidPair},
		{"same twice", with(func(d *PairDeclaration) { d.Members[1] = "a" }), ErrInvalidPair},
		{"standby outside", with(func(d *PairDeclaration) { d.Standby = "c" }), ErrInvalidPair},
		{"no site", with(func(d *PairDeclaration) { d.Site = "" }), ErrInvalidPair},
		{"no devices", with(func(d *PairDeclaration) { d.Devices = nil }), ErrInvalidPair},
		{"device twice", with(func(d *PairDeclaration) { d.Devices = []string{"m1", "m1"} }), ErrInvalidPair},
		{"control char", with(func(d *PairDeclaration) { d.Devices = []string{"m\x01"} }), ErrInvalidPair},
		{"slash in node", with(func(d *PairDeclaration) { d.Members[0], d.Standby = "a/x", "a/x" }), ErrInvalidPair},
		{"unknown node", with(func(d *PairDeclaration) { d.Members[0] = "zz" }), ErrUnknownNode},
		{"pending", with(func(d *PairDeclaration) { d.Members[0] = "pend" }), ErrPairConflict},
		{"revoked", with(func(d *PairDeclaration) { d.Members[0] = "rev" }), ErrPairConflict},
		{"other org", with(func(d *PairDeclaration) { d.Members[0] = "oth" }), ErrPairConflict},
		{"other site", with(func(d *PairDeclaration) { d.Members[0] = "far" }), ErrPairConflict},
		{"no credential key", with(func(d *PairDeclaration) { d.Members[0] = "nokey" }), ErrPairConflict},
		{"already paired", with(func(d *PairDeclaration) { d.Members[0] = "c" }), ErrPairConflict},
		{"unknown device", with(func(d *PairDeclaration) { d.Devices = []string{"m9"} }), ErrUnknownMiner},
		{"third owner", with(func(d *PairDeclaration) { d.Devices = []string{"m3"} }), ErrPairConflict},
	} {
		err := checkPairDecl(c.d, testPairRegistry())
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecideWithdraw(t *testing.T) {
	devs := map[string]bool{"m1": true, "m2": true}
	for _, c := range []struct {
		name    string
		miners  []string
		running bool
		seq     uint64
		mark    uint64
		want    withdrawVerdict
	}{
		{"not a pair command", []string{"m9"}, false, 5, 0, keepQueued},
		{"no miners", nil, false, 5, 0, keepQueued},
		{"never started", []string{"m1", "m2"}, false, 5, 4, moveToHolder},
		{"acked running", []string{"m1"}, true, 5, 0, interruptIt},
		{"consumed by the gate before a reconnect", []string{"m2"}, false, 5, 5, interruptIt},
	} {
		if got := decideWithdraw(c.miners, devs, c.running, c.seq, c.mark); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLivePairCommands(t *testing.T) {
	cmds := []pairCommand{{commandID: "old", issuedAt: t0}, {commandID: "edge", issuedAt: t0.Add(time.Second)}, {commandID: "new", issuedAt: t0.Add(30 * time.Second)}}
	live, expired := livePairCommands(cmds, 60*time.Second, t0.Add(61*time.Second))
	if expired != 2 || len(live) != 1 || live[0].commandID != "new" {
		t.Fatalf("live %v expired %d", live, expired)
	}
}

func TestHolderChangeKinds(t *testing.T) {
	g := &pb.LeaseGrant{}
	for _, c := range []struct {
		hc       lease.HolderChanged
		kind     string
		transfer bool
	}{
		{lease.HolderChanged{To: "a", Grant: g}, "acquire", false},
		{lease.HolderChanged{From: "a", To: "b", Failover: true, Grant: g}, "failover", false},
		{lease.HolderChanged{From: "a", To: "b", Grant: g}, "transfer", true},
		{lease.HolderChanged{From: "a"}, "release", false},
	} {
		if k := changeKind(&c.hc); k != c.kind || isTransfer(&c.hc) != c.transfer {
			t.Errorf("%+v: kind %s transfer %v", c.hc, k, isTransfer(&c.hc))
		}
	}
}
