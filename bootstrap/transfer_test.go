package bootstrap

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
	"github.com/hashfleet/hashfleet/server/credentials"
)

// transferSite is split mode with two enrolled, running nodes over the real TLS gateway, and a mixed
// simulated site (an Antminer: web CGI + CGMiner API, and a Proto rig: MDK REST), all paired to node a.
type transferSite struct {
	*splitSite
	mixed *mixed.Fleet
	nodes map[string]*transferNode
}

type transferNode struct {
	id   string
	dir  string
	keys *identity.Identity
	proc *NodeProcess
}

func startTransferSite(t *testing.T) *transferSite {
	t.Helper()
	cfg := mixed.DefaultConfig()
	cfg.Antminer, cfg.Proto, cfg.CGMiner, cfg.Seed = 1, 1, 0, 11
	cfg.APIPort, cfg.WebPort = 0, 0
	mf, err := mixed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mf.Close() })
	s := &splitSite{t: t}
	s.srvOpts = ServerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0", AdminToken: testToken,
		DebugInject: true, DrainReconnectAfter: 100 * time.Millisecond, Logger: quietLogger()}
	s.startServer()
	ts := &transferSite{splitSite: s, mixed: mf, nodes: map[string]*transferNode{}}
	for _, name := range []string{"a", "b"} {
		n := &transferNode{dir: t.TempDir()}
		s.nodeDir = n.dir
		s.enroll()
		n.id = s.nodeID
		if n.keys, err = identity.Load(filepath.Join(n.dir, nodeIdentityDir)); err != nil {
			t.Fatal(err)
		}
		ts.nodes[name] = n
	}
	s.nodeID, s.nodeDir = ts.nodes["a"].id, ts.nodes["a"].dir
	ts.start("a", mf.Devices())
	ts.start("b", nil)
	s.node = ts.nodes["a"].proc
	ts.pairAllTo("a")
	return ts
}

func (ts *transferSite) start(name string, devs []*pb.Device) {
	ts.t.Helper()
	n := ts.nodes[name]
	o := NodeRunOptions{DataDir: n.dir, Devices: devs, PollInterval: 300 * time.Millisecond, StatusInterval: 100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Logger: quietLogger(), AdminListen: NodeAdminOff, LocalUI: "off",
		Backoff: uplink.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2, StableAfter: time.Minute}}
	p, err := StartNode(context.Background(), o)
	if err != nil {
		ts.t.Fatal(err)
	}
	n.proc = p
	ts.t.Cleanup(func() { ts.stop(name) })
}

// stop stops node name if it runs.
func (ts *transferSite) stop(name string) {
	n := ts.nodes[name]
	if n.proc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.proc.Stop(ctx); err != nil {
		ts.t.Errorf("stop node %s: %v", name, err)
	}
	n.proc = nil
	if name == "a" {
		ts.node = nil
	}
}

// pairAllTo pairs every device the site has to node name and waits until all are mining in the API.
func (ts *transferSite) pairAllTo(name string) {
	ts.t.Helper()
	id := ts.nodes[name].id
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	n := ts.mixed.Count()
	waitFor(ts.t, 10*time.Second, "the devices pending pairing", func() bool {
		return ts.do("GET", "/api/v1/devices/pending?node="+id, nil, &pend) == 200 && len(pend.Devices) == n
	})
	ids := make([]string, 0, n)
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	if st := ts.do("POST", "/api/v1/nodes/"+id+"/devices", map[string]any{"miner_ids": ids}, nil); st != 200 {
		ts.t.Fatalf("pair: HTTP %d", st)
	}
	ts.waitOwner(ids, id)
}

// waitOwner waits until the API shows every miner of ids owned by node and mining (polled by it).
func (ts *transferSite) waitOwner(ids []string, node string) {
	ts.t.Helper()
	waitFor(ts.t, 20*time.Second, fmt.Sprintf("%v mining under node %s", ids, node), func() bool {
		var page struct {
			Items []struct {
				ID          string  `json:"id"`
				Node        string  `json:"node"`
				State       string  `json:"state"`
				Stale       bool    `json:"stale"`
				HashrateTHs float64 `json:"hashrate_ths"`
			} `json:"items"`
		}
		if ts.do("GET", "/api/v1/miners", nil, &page) != 200 {
			return false
		}
		ok := 0
		for _, m := range page.Items {
			if slices.Contains(ids, m.ID) && m.Node == node && m.State == "mining" && !m.Stale && m.HashrateTHs > 0 {
				ok++
			}
		}
		return ok == len(ids)
	})
}

// ids returns the site's Antminer and Proto rig ids.
func (ts *transferSite) ids() (ant, rig string) {
	for _, d := range ts.mixed.Devices() {
		switch d.GetProtocol() {
		case pb.Protocol_PROTOCOL_PROTO:
			rig = d.GetMinerId()
		default:
			ant = d.GetMinerId()
		}
	}
	return ant, rig
}

func (ts *transferSite) device(id string) *pb.Device {
	for _, d := range ts.mixed.Devices() {
		if d.GetMinerId() == id {
			return d
		}
	}
	ts.t.Fatalf("no device %s", id)
	return nil
}

// poolPassword issues update_pools with a fresh pool password to ids and waits for it to succeed.
func (ts *transferSite) poolPassword(ids ...string) string {
	ts.t.Helper()
	var r [12]byte
	_, _ = rand.Read(r[:])
	secret := "pool-pw-" + hex.EncodeToString(r[:])
	var res struct {
		CommandID string `json:"command_id"`
	}
	body := map[string]any{"miner_ids": ids, "action": "update_pools", "pools": []map[string]any{
		{"url": "stratum+tcp://pool.example:3333", "user": "acct.worker", "password": secret, "priority": 0}}}
	if st := ts.do("POST", "/api/v1/commands", body, &res); st != 202 {
		ts.t.Fatalf("update_pools: HTTP %d", st)
	}
	ts.waitCommand(res.CommandID, "succeeded")
	return secret
}

// rigAccepts reports whether the Proto rig accepts JWTs signed with key (a fresh driver, password-less).
func (ts *transferSite) rigAccepts(rig string, key crypto.Signer) error {
	drv, err := proto.New(ts.device(rig), proto.Config{SigningKey: key, Issuer: "probe"})
	if err != nil {
		ts.t.Fatal(err)
	}
	defer drv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = drv.Poll(ctx)
	return err
}

// opens reports whether node n's credential key opens env for (device, purpose).
func (n *transferNode) opens(t *testing.T, env *sealing.Envelope, device, purpose string) ([]byte, error) {
	t.Helper()
	priv, err := n.keys.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return sealing.Open(priv, env, n.id, device, purpose)
}

// TestSplitTransferDevice: two enrolled nodes on the real TLS gateway, an Antminer and a Proto rig paired to
// node a with a sealed pool password each. Transferring both to node b (the rig through the API, the
// Antminer through `hashfleet ctl devices transfer`): node a re-seals the passwords to b and hands the rig
// to b's miner-signing key; afterwards the vault holds b's envelopes only (b's key opens them, a's holds
// none), the rig refuses a's JWTs and accepts b's, b polls and commands both, and a's gate refuses a signed
// command for them (REFUSED_OWNERSHIP). Hostile requests are refused.
func TestSplitTransferDevice(t *testing.T) {
	ts := startTransferSite(t)
	a, b := ts.nodes["a"], ts.nodes["b"]
	ant, rig := ts.ids()
	secret := ts.poolPassword(ant, rig)
	purpose := sealing.PoolPassword(0)
	vault := ts.srv.Server.Vault()
	for _, id := range []string{ant, rig} {
		if _, err := vault.Envelope(a.id, id, purpose); err != nil {
			t.Fatalf("before: a's envelope of %s: %v", id, err)
		}
	}
	if got := ts.mixed.Protos().Miner(rig).Snapshot().AuthKey; !got.Equal(a.keys.MinerSigningPublicKey()) {
		t.Fatal("the rig is not paired to node a's miner-signing key")
	}

	// Hostile or impossible requests.
	for name, c := range map[string]struct {
		path string
		body any
		want int
	}{
		"unknown device": {"/api/v1/devices/no-such/transfer", map[string]any{"to": b.id}, 404},
		"unknown node":   {"/api/v1/devices/" + rig + "/transfer", map[string]any{"to": "no-such-node"}, 404},
		"same node":      {"/api/v1/devices/" + rig + "/transfer", map[string]any{"to": a.id}, 409},
		"no target":      {"/api/v1/devices/" + rig + "/transfer", map[string]any{}, 400},
		"unknown field":  {"/api/v1/devices/" + rig + "/transfer", map[string]any{"to": b.id, "from": a.id}, 400},
		"bad node id":    {"/api/v1/devices/" + rig + "/transfer", map[string]any{"to": "../x"}, 404},
	} {
		if st := ts.do("POST", c.path, c.body, nil); st != c.want {
			t.Errorf("%s: HTTP %d, want %d", name, st, c.want)
		}
	}

	var res struct {
		CommandID string `json:"command_id"`
		From      string `json:"from"`
		To        string `json:"to"`
		Reseal    int    `json:"reseal"`
	}
	if st := ts.do("POST", "/api/v1/devices/"+rig+"/transfer", map[string]any{"to": b.id}, &res); st != 202 {
		t.Fatalf("transfer: HTTP %d", st)
	}
	if res.From != a.id || res.To != b.id || res.Reseal != 1 {
		t.Fatalf("transfer started %+v", res)
	}
	v := ts.waitCommand(res.CommandID, "succeeded")
	for _, r := range v.Results {
		if len(r.Message) > 200 {
			t.Fatalf("the result kept the envelopes: %q", r.Message)
		}
	}
	ts.transferWithCtl(ant, b.id)
	ts.waitOwner([]string{ant, rig}, b.id)

	for _, id := range []string{ant, rig} {
		if _, err := vault.Envelope(a.id, id, purpose); !errors.Is(err, credentials.ErrNotOwner) {
			t.Fatalf("after: a's envelope of %s: %v, want ErrNotOwner", id, err)
		}
		env, err := vault.Envelope(b.id, id, purpose)
		if err != nil {
			t.Fatalf("after: b's envelope of %s: %v", id, err)
		}
		pt, err := b.opens(t, env, id, purpose)
		if err != nil || string(pt) != secret {
			t.Fatalf("b opens %s's pool password: %q, %v", id, pt, err)
		}
		if _, err := a.opens(t, env, id, purpose); err == nil {
			t.Fatalf("node a's key opened b's envelope of %s", id)
		}
		st, err := vault.Status(id)
		if err != nil || !slices.Equal(st.Owners, []string{b.id}) || st.State != credentials.StateActive {
			t.Fatalf("vault status of %s: %+v, %v", id, st, err)
		}
	}
	if got := ts.mixed.Protos().Miner(rig).Snapshot().AuthKey; !got.Equal(b.keys.MinerSigningPublicKey()) {
		t.Fatal("the rig is not paired to node b's miner-signing key")
	}
	if err := ts.rigAccepts(rig, minerKey(t, a)); err == nil {
		t.Fatal("the rig still accepts node a's JWTs")
	}
	if err := ts.rigAccepts(rig, minerKey(t, b)); err != nil {
		t.Fatalf("the rig refuses node b's JWTs: %v", err)
	}

	// b commands both through the cloud.
	ts.waitCommand(ts.command("blink", ant, rig), "succeeded")

	// a's gate refuses a correctly signed command for them: it no longer owns them.
	seq := ts.mark() + 1
	ts.inject(ts.signed("after-transfer", seq, 0, rig, ant))
	ts.audit(seq, "after-transfer", pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP)

	// Transferring again to the node that owns it is refused.
	if st := ts.do("POST", "/api/v1/devices/"+rig+"/transfer", map[string]any{"to": b.id}, nil); st != 409 {
		t.Fatalf("transfer to the owner: HTTP %d", st)
	}
}

// minerKey is node n's miner-signing key, read from its key files (the test plays the node).
func minerKey(t *testing.T, n *transferNode) crypto.Signer {
	t.Helper()
	id, err := identity.Load(filepath.Join(n.dir, nodeIdentityDir))
	if err != nil {
		t.Fatal(err)
	}
	return id.MinerSigner()
}

// transferWithCtl moves id to node to through `hashfleet ctl devices transfer` (the real API client).
func (ts *transferSite) transferWithCtl(id, to string) {
	ts.t.Helper()
	cl, err := apiclient.New(ts.base, testToken, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	out := &bytes.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := CtlTransferDevice(ctx, CtlOptions{Client: cl, Out: out, PollInterval: 50 * time.Millisecond}, id, to); err != nil {
		ts.t.Fatalf("ctl devices transfer: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), id+" now belongs to node "+to) {
		ts.t.Fatalf("ctl output %q", out.String())
	}
}

// TestNodeRotateSigningKey: `hashfleet node rotate-signing-key` on a stopped node that owns a Proto rig
// (real MDK REST simulator). With the rig down the rotation stops before retiring anything: the current key
// still works and the staged key waits. Run again with the rig back, the rig is re-paired to the new key
// (authenticated by the old one) and the old key retired: the rig refuses JWTs of the old key and accepts
// the new key's; the restarted node polls it with the new key. A malformed staged key is refused.
func TestNodeRotateSigningKey(t *testing.T) {
	ts := startTransferSite(t)
	a := ts.nodes["a"]
	_, rig := ts.ids()
	idDir := filepath.Join(a.dir, nodeIdentityDir)
	old := minerKey(t, a)
	ts.stop("a")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := proto.Config{RequestTimeout: time.Second, DialTimeout: 500 * time.Millisecond}

	// The rig is unreachable: nothing is retired.
	if err := ts.mixed.Protos().SetFault(rig, protorig.FaultDown); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	if err := NodeRotateSigningKey(ctx, a.dir, base, out); !errors.Is(err, node.ErrSigningRotationIncomplete) {
		t.Fatalf("rotation with the rig down: %v\n%s", err, out.String())
	}
	if err := ts.mixed.Protos().SetFault(rig, protorig.FaultNone); err != nil {
		t.Fatal(err)
	}
	if err := ts.rigAccepts(rig, old); err != nil {
		t.Fatalf("after the failed rotation the rig refuses the current key: %v", err)
	}
	if !minerKey(t, a).Public().(ed25519.PublicKey).Equal(old.Public()) {
		t.Fatal("the failed rotation replaced the key")
	}
	staged, err := identity.StageMinerSigningKey(idDir) // the staged key is reused
	if err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := NodeRotateSigningKey(ctx, a.dir, base, out); err != nil {
		t.Fatalf("rotation: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "re-paired to the new miner-signing key: 1") || !strings.Contains(out.String(), "old key retired") {
		t.Fatalf("output %q", out.String())
	}
	now := minerKey(t, a)
	if !now.Public().(ed25519.PublicKey).Equal(staged.Public()) {
		t.Fatal("the committed key is not the staged one")
	}
	if err := ts.rigAccepts(rig, old); err == nil {
		t.Fatal("the rig accepts the retired key's JWTs")
	}
	if err := ts.rigAccepts(rig, now); err != nil {
		t.Fatalf("the rig refuses the new key's JWTs: %v", err)
	}
	if got := ts.mixed.Protos().Miner(rig).Snapshot().AuthKey; !got.Equal(now.Public()) {
		t.Fatal("the rig is not paired to the new key")
	}
	if _, err := os.Stat(filepath.Join(idDir, identity.NextMinerSigningKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the staged key file remains: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(idDir, identity.MinerSigningKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if err := identity.CommitMinerSigningKey(idDir); !errors.Is(err, identity.ErrNoStagedKey) {
		t.Fatalf("commit with nothing staged: %v", err)
	}

	// The node comes back with the new key and polls the rig with it; its hello announces the key, signed by
	// its identity, so the cloud's record (used to hand rigs over on a transfer to it) follows.
	ts.start("a", nil)
	ts.node = a.proc
	ts.waitOwner([]string{rig}, a.id)
	waitFor(t, 10*time.Second, "the cloud to record the rotated miner-signing key", func() bool {
		rec, err := ts.srv.Server.Registry().Record(a.id)
		return err == nil && now.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(rec.GetMinerSigningPublicKey()))
	})

	// A corrupt staged key is refused, not used.
	if err := os.WriteFile(filepath.Join(idDir, identity.NextMinerSigningKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.StageMinerSigningKey(idDir); !errors.Is(err, identity.ErrCorruptKey) {
		t.Fatalf("corrupt staged key: %v", err)
	}
	if err := identity.CommitMinerSigningKey(idDir); !errors.Is(err, identity.ErrCorruptKey) {
		t.Fatalf("commit a corrupt staged key: %v", err)
	}
	_ = os.Remove(filepath.Join(idDir, identity.NextMinerSigningKeyFile))
}

// TestSplitRotationAfterRevocation: node a sets the Antminer's login (update_password) and a pool password,
// so it could read both; the Antminer moves to node b; then a is revoked. Both credentials become
// revocation-pending, and the revocation's rotation sweep has b set a new random login on the simulated
// Antminer (update_password through the signed command path), after which the vault's login is the one
// the miner has (b's envelope opens to it) and no longer pending. The pool password, which the cloud cannot
// invent, stays listed until the operator enters a new one with update_pools; then
// GET /api/v1/credentials?state=revocation-pending is empty and b still polls the miner.
func TestSplitRotationAfterRevocation(t *testing.T) {
	ts := startTransferSite(t)
	a, b := ts.nodes["a"], ts.nodes["b"]
	ant, _ := ts.ids()
	miner := ts.mixed.Antminers().Miner(ant)
	var res struct {
		CommandID string `json:"command_id"`
	}
	const first = "First-Login-1"
	if st := ts.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{ant}, "action": "update_password", "password": first}, &res); st != 202 {
		t.Fatalf("update_password: HTTP %d", st)
	}
	ts.waitCommand(res.CommandID, "succeeded")
	if miner.Password() != first {
		t.Fatalf("miner password %q", miner.Password())
	}
	ts.poolPassword(ant)
	ts.transferWithCtl(ant, b.id)
	ts.waitOwner([]string{ant}, b.id)

	type pendingList struct {
		Devices []struct {
			DeviceID    string `json:"device_id"`
			Credentials []struct {
				Purpose string `json:"purpose"`
				State   string `json:"state"`
			} `json:"credentials"`
		} `json:"devices"`
	}
	if st := ts.do("POST", "/api/v1/nodes/"+a.id+"/revoke", nil, nil); st != 200 {
		t.Fatalf("revoke a: HTTP %d", st)
	}
	vault := ts.srv.Server.Vault()
	waitFor(t, 20*time.Second, "the miner login rotated by node b", func() bool {
		st, err := vault.Status(ant)
		if err != nil {
			return false
		}
		for _, c := range st.Credentials {
			if c.Purpose == sealing.PurposeMinerLogin {
				return c.State == credentials.StateActive && miner.Password() != first
			}
		}
		return false
	})
	env, err := vault.Envelope(b.id, ant, sealing.PurposeMinerLogin)
	if err != nil {
		t.Fatal(err)
	}
	login, err := b.opens(t, env, ant, sealing.PurposeMinerLogin)
	if err != nil || string(login) != miner.Password() || len(login) < 32 {
		t.Fatalf("the vault's login (%d bytes, %v) is not the miner's", len(login), err)
	}

	// The pool password is still pending, and an on-demand sweep says why.
	var pend pendingList
	if st := ts.do("GET", "/api/v1/credentials?state=revocation-pending", nil, &pend); st != 200 || len(pend.Devices) != 1 ||
		len(pend.Devices[0].Credentials) == 0 {
		t.Fatalf("pending: HTTP %d %+v", st, pend)
	}
	var sweep struct {
		Rotations []struct {
			DeviceID, Purpose, Skipped string
			CommandID                  string `json:"command_id"`
		} `json:"rotations"`
	}
	if st := ts.do("POST", "/api/v1/credentials/rotate", nil, &sweep); st != 200 || len(sweep.Rotations) != 1 ||
		sweep.Rotations[0].Purpose != sealing.PoolPassword(0) || sweep.Rotations[0].Skipped == "" || sweep.Rotations[0].CommandID != "" {
		t.Fatalf("sweep: HTTP %d %+v", st, sweep)
	}
	secret := ts.poolPassword(ant)
	if pools := miner.Snapshot().Pools; len(pools) == 0 || pools[0].Pass != secret {
		t.Fatalf("miner pools %+v", pools)
	}
	waitFor(t, 10*time.Second, "no revocation-pending credential left", func() bool {
		var p pendingList
		return ts.do("GET", "/api/v1/credentials?state=revocation-pending", nil, &p) == 200 && len(p.Devices) == 0
	})
	// b still reaches the miner with the rotated login.
	ts.waitCommand(ts.command("blink", ant), "succeeded")
	ts.waitOwner([]string{ant}, b.id)
}
