package cloudcluster_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"google.golang.org/protobuf/proto"
)

type keyListJSON struct {
	Version int64  `json:"version"`
	Active  string `json:"active"`
	Keys    []struct {
		KeyID string `json:"key_id"`
		State string `json:"state"`
	} `json:"keys"`
}

type keyChangeJSON struct {
	KeyID       string `json:"key_id"`
	SignerKeyID string `json:"signer_key_id"`
	Already     bool   `json:"already"`
	Version     int64  `json:"version"`
	CommandID   string `json:"command_id"`
	Nodes       []struct {
		Node         string `json:"node"`
		Seq          uint64 `json:"seq"`
		Sent         bool   `json:"sent"`
		StreamMember string `json:"stream_member"`
		Error        string `json:"error"`
	} `json:"nodes"`
}

// TestClusterKeyRotationEndToEnd: three real members (etcd, Postgres, shared KEK) and a real node streaming
// to member B. A rotation on A is announced to the node, signed by the key it retires, and its keyring
// takes the new key; member C picks the new set up from the store by itself and a command issued on C is
// signed with the new key and runs; revoking the old key on B reaches the node, which then refuses a
// command forged with the old key; two rotations racing on A and B leave exactly one new active key;
// malformed requests get 4xx and change nothing; a new stream's HelloAck carries the new key set.
func TestClusterKeyRotationEndToEnd(t *testing.T) {
	skipUnderRace(t)
	c := startAuthCluster(t)
	A, B, C := c.members[0], c.members[1], c.members[2]
	nodeDir, nodeID := c.enroll(2, 0, 1, 2)
	idDir := filepath.Join(nodeDir, "identity")
	enr, err := identity.LoadEnrollment(idDir)
	if err != nil {
		t.Fatal(err)
	}
	enr.ServerURL = "grpcs://" + B.GatewayAddr
	if err := identity.SaveEnrollment(idDir, enr); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	np, err := bootstrap.StartNode(ctx, bootstrap.NodeRunOptions{DataDir: nodeDir, AdminListen: bootstrap.NodeAdminOff,
		StatusInterval: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, Logger: quiet,
		Backoff: uplink.Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: 0.2, StableAfter: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	stopNode := sync.OnceFunc(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := np.Stop(sctx); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	t.Cleanup(stopNode)
	var ns struct {
		StreamMember string `json:"stream_member"`
		LastSeq      uint64 `json:"last_seq"`
	}
	waitUntil(t, 15*time.Second, "the node's stream on B", func() bool {
		return c.do(2, "GET", "/cluster/v1/nodes/"+nodeID, nil, &ns) == 200 && ns.StreamMember == B.Member.ID()
	})
	old := C.Secrets.Signer.Keys()[0].GetKeyId()
	oldSeed := seedOf(t, A.Secrets.Signer, old)
	cVersion := C.Secrets.Signer.Version()
	trusts := func(id string, revoked bool) bool {
		_, keys, ok := np.Node.TrustedKeys()
		for _, k := range keys {
			if ok && k.GetKeyId() == id && k.GetRevoked() == revoked {
				return true
			}
		}
		return false
	}
	if !trusts(old, false) {
		t.Fatal("the node does not trust the org's key after enrollment")
	}

	// Rotate on A: the node (streaming to B) takes the announcement, signed by the old key.
	var rot keyChangeJSON
	t0 := time.Now()
	if st := c.do(0, "POST", "/cluster/v1/keys/rotate", map[string]string{"overlap": "1h"}, &rot); st != 200 ||
		rot.SignerKeyID != old || rot.KeyID == old || len(rot.Nodes) != 1 || rot.Nodes[0].Node != nodeID || !rot.Nodes[0].Sent ||
		rot.Nodes[0].StreamMember != B.Member.ID() {
		t.Fatalf("rotate on A: HTTP %d %+v", st, rot)
	}
	newKey := rot.KeyID
	rec := waitAudit(t, np, rot.Nodes[0].Seq, "keys-rotate-"+newKey)
	if rec.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || rec.GetKeyId() != old {
		t.Fatalf("announcement on the node: %v", rec)
	}
	waitUntil(t, 5*time.Second, "the node's keyring to trust the new key", func() bool { return trusts(newKey, false) })
	t.Logf("rotated on A, announcement (seq %d, signed by %s) taken by the node via B %s after the request",
		rec.GetMonotonicSeq(), old, time.Since(t0).Round(time.Millisecond))

	// Every member reads the new set (its KeyWatcher, every 2s, or the node's grain before queueing the
	// announcement) and C signs with it.
	waitUntil(t, 5*time.Second, "every member to reload the keys", func() bool {
		return A.Secrets.Signer.Version() == rot.Version && B.Secrets.Signer.Version() == rot.Version &&
			C.Secrets.Signer.Version() == rot.Version && rot.Version > cVersion
	})
	t.Logf("every member signs with the rotated set %s after the request", time.Since(t0).Round(time.Millisecond))
	scan := func(id string) []byte {
		b, _ := proto.Marshal(&pb.CommandPayload{Discovery: &pb.DiscoveryRequest{ScanId: id, Targets: []string{"127.0.0.1"},
			CgminerPorts: []int32{int32(testsvc.FreePort(t))}}})
		return b
	}
	var issued struct {
		Seq uint64 `json:"seq"`
	}
	if st := c.do(2, "POST", "/cluster/v1/nodes/"+nodeID+"/commands", map[string]any{"command_id": "scan-new", "actor": "user:ops",
		"payload": scan("scan-new")}, &issued); st != 200 {
		t.Fatalf("issue on C: HTTP %d", st)
	}
	if r := waitAudit(t, np, issued.Seq, "scan-new"); r.GetKeyId() != newKey ||
		(r.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING && r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED) {
		t.Fatalf("command issued on C after the rotation: %v", r)
	}

	// The announcement sent again (on C) finds the command queued the first time: no new seq.
	var re keyChangeJSON
	if st := c.do(2, "POST", "/cluster/v1/keys/"+url.PathEscape(newKey)+"/announce", nil, &re); st != 200 || !re.Already ||
		len(re.Nodes) != 1 || re.Nodes[0].Seq != rot.Nodes[0].Seq || re.Nodes[0].Sent || re.Nodes[0].Error != "" {
		t.Fatalf("announce again on C: HTTP %d %+v", st, re)
	}

	// Revoke the old key on B (its id URL-escaped); the node refuses the old key from then on.
	var rev keyChangeJSON
	if st := c.do(1, "POST", "/cluster/v1/keys/"+url.PathEscape(old)+"/revoke", nil, &rev); st != 200 || rev.KeyID != old ||
		rev.Already || len(rev.Nodes) != 1 || rev.Nodes[0].Error != "" {
		t.Fatalf("revoke on B: HTTP %d %+v", st, rev)
	}
	if r := waitAudit(t, np, rev.Nodes[0].Seq, "keys-revoke-"+old); r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || r.GetKeyId() != newKey {
		t.Fatalf("revocation on the node: %v", r)
	}
	waitUntil(t, 5*time.Second, "the node's keyring to revoke the old key", func() bool { return trusts(old, true) })
	// Revoking it again (a retried request, on C, by its short id) writes nothing and queues nothing twice.
	var again keyChangeJSON
	if st := c.do(2, "POST", "/cluster/v1/keys/"+strings.TrimPrefix(old, "default/")+"/revoke", nil, &again); st != 200 ||
		!again.Already || again.Version != rev.Version || again.Nodes[0].Seq != rev.Nodes[0].Seq {
		t.Fatalf("revoke again on C: HTTP %d %+v (first %+v)", st, again, rev)
	}
	if st := c.do(1, "GET", "/cluster/v1/nodes/"+nodeID, nil, &ns); st != 200 || ns.LastSeq != rev.Nodes[0].Seq {
		t.Fatalf("node's last seq %d after the retried revocation, want %d", ns.LastSeq, rev.Nodes[0].Seq)
	}
	forged := &pb.ControlCommand{CommandId: "forged-old", Actor: "user:evil", NodeId: nodeID, MonotonicSeq: ns.LastSeq + 1,
		IdempotencyKey: "forged-old", Payload: scan("forged-old"), KeyId: old}
	if err := signing.Sign(ed25519.NewKeyFromSeed(oldSeed), forged); err != nil {
		t.Fatal(err)
	}
	link, err := B.Member.Fleet().NodePID(ctx, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	B.Member.System().Root.Send(link, &pb.ClusterDeliver{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: forged}}})
	if r := waitAudit(t, np, forged.GetMonotonicSeq(), "forged-old"); r.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_KEY {
		t.Fatalf("command forged with the revoked key: %v", r)
	} else {
		t.Logf("forged with the revoked key: %s %s", r.GetCode(), r.GetMessage())
	}

	// Malformed requests: 4xx, nothing changes.
	var before keyListJSON
	if st := c.do(2, "GET", "/cluster/v1/keys", nil, &before); st != 200 || before.Active != newKey || len(before.Keys) != 2 {
		t.Fatalf("keys on C: HTTP %d %+v", st, before)
	}
	raw := func(i int, path, body string) int {
		req, _ := http.NewRequest("POST", "http://"+c.members[i].HTTPAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+authToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"overlap a number", "/cluster/v1/keys/rotate", `{"overlap":86400}`, 400},
		{"not an object", "/cluster/v1/keys/rotate", `["1h"]`, 400},
		{"overlap not a duration", "/cluster/v1/keys/rotate", `{"overlap":"a day"}`, 400},
		{"zero overlap", "/cluster/v1/keys/rotate", `{"overlap":"0s"}`, 400},
		{"negative overlap", "/cluster/v1/keys/rotate", `{"overlap":"-1h"}`, 400},
		{"overlap beyond the bound", "/cluster/v1/keys/rotate", `{"overlap":"100000h"}`, 400},
		{"unknown field", "/cluster/v1/keys/rotate", `{"overlap":"1h","force":true}`, 400},
		{"truncated body", "/cluster/v1/keys/rotate", `{"overlap":`, 400},
		{"stale expected key", "/cluster/v1/keys/rotate", `{"overlap":"1h","expect_active":"` + old + `"}`, 409},
		{"unknown key", "/cluster/v1/keys/k_0000000000000000/revoke", ``, 404},
		{"key of another org", "/cluster/v1/keys/" + url.PathEscape("other/k_0000000000000000") + "/revoke", ``, 404},
		{"the active key", "/cluster/v1/keys/" + url.PathEscape(newKey) + "/revoke", ``, 409},
		{"revoke with a body", "/cluster/v1/keys/" + url.PathEscape(old) + "/revoke", `{"x":1}`, 400},
		{"announce the first key", "/cluster/v1/keys/" + url.PathEscape(old) + "/announce", ``, 404},
		{"announce an unknown key", "/cluster/v1/keys/k_0000000000000000/announce", ``, 404},
		{"key id with a space", "/cluster/v1/keys/k%20x/revoke", ``, 400},
	} {
		if got := raw(int(tc.name[0])%3, tc.path, tc.body); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+A.HTTPAddr+"/cluster/v1/keys/rotate", strings.NewReader(`{"overlap":"1h"}`))
	req.Header.Set("Authorization", "Bearer wrong-token-wrong-token")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("rotate with a wrong token: %v %v", res, err)
	} else {
		_ = res.Body.Close()
	}
	var after keyListJSON
	if c.do(0, "GET", "/cluster/v1/keys", nil, &after); after.Version != before.Version || after.Active != newKey || len(after.Keys) != 2 {
		t.Fatalf("refused requests changed the keys: %+v, was %+v", after, before)
	}

	// Two rotations of the same active key at once, on A and B: exactly one lands.
	codes := make([]int, 2)
	outs := make([]keyChangeJSON, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = c.do(i, "POST", "/cluster/v1/keys/rotate", map[string]string{"overlap": "1h", "expect_active": newKey}, &outs[i])
		}()
	}
	wg.Wait()
	winner := -1
	switch {
	case codes[0] == 200 && codes[1] == 409:
		winner = 0
	case codes[0] == 409 && codes[1] == 200:
		winner = 1
	default:
		t.Fatalf("concurrent rotations on A and B: HTTP %v", codes)
	}
	var final keyListJSON
	if c.do(2, "GET", "/cluster/v1/keys", nil, &final); final.Active != outs[winner].KeyID || len(final.Keys) != 3 ||
		final.Version != before.Version+1 {
		t.Fatalf("after the race: %+v", final)
	}
	actives := 0
	for _, k := range final.Keys {
		if k.State == "active" {
			actives++
		}
	}
	if actives != 1 {
		t.Fatalf("%d active keys after the race: %+v", actives, final)
	}
	if r := waitAudit(t, np, outs[winner].Nodes[0].Seq, "keys-rotate-"+outs[winner].KeyID); r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED ||
		r.GetKeyId() != newKey {
		t.Fatalf("second announcement on the node: %v", r)
	}

	// A new stream's HelloAck carries the current key set (member C answers it through the Node grain).
	stopNode()
	ack := helloAckFor(t, c, C, idDir, nodeID)
	got := map[string]bool{}
	for _, k := range ack.GetCommandKeys() {
		got[k.GetKeyId()] = k.GetRevoked()
	}
	if len(got) != 3 || !got[old] || got[newKey] || got[outs[winner].KeyID] {
		t.Fatalf("HelloAck keys: %v", ack.GetCommandKeys())
	}
}

func seedOf(t *testing.T, s *cloudcluster.OrgSigner, id string) []byte {
	t.Helper()
	for _, r := range s.Export() {
		if r.Key.GetKeyId() == id {
			return r.PrivateSeed
		}
	}
	t.Fatalf("no key %s", id)
	return nil
}

// helloAckFor opens a session for the enrolled node (challenge and session on member cm, over mTLS) and
// returns the HelloAck of a control stream on cm.
func helloAckFor(t *testing.T, c *authCluster, cm *bootstrap.ClusterMember, idDir, nodeID string) *pb.HelloAck {
	t.Helper()
	id, err := identity.Load(idDir)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := identity.LoadEnrollment(idDir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.LoadClientCert(idDir)
	if err != nil {
		t.Fatal(err)
	}
	gc := dialTLS(t, cm.GatewayAddr, c.members[0].Secrets.CACertPEM, &cert)
	ctx := context.Background()
	ch, err := gc.Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gc.OpenSession(ctx, &pb.OpenSessionRequest{NodeId: nodeID, ApiKey: enr.APIKey, Nonce: ch.GetNonce(),
		Signature: id.SignChallenge(ch.GetNonce(), nodeID)})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := hello(gc, nodeID, tok.GetToken())
	if err != nil {
		t.Fatal(err)
	}
	return ack
}
