package bootstrap

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// enroll → confirm → run: telemetry reaches the cloud API, and a command issued through the API runs on the
// simulated miner (its write log) and its result comes back.
func TestSplitEnrollConfirmRun(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 3})

	id := s.command("reboot", "sim-1")
	v := s.waitCommand(id, "succeeded")
	if len(v.Results) != 1 || v.Results[0].Status != "succeeded" {
		t.Fatalf("results %+v", v.Results)
	}
	w := s.fleet.Miner("sim-1").WriteLog()
	if len(w) != 1 || w[0].Command != "restart" || !w[0].Accepted {
		t.Fatalf("sim-1 write log %+v", w)
	}
	if s.writes() != 1 {
		t.Fatalf("%d writes across the site, want only sim-1's", s.writes())
	}
	// The command was signed with the org's key, verified by the node's keyring and audited at both ends.
	rec := s.audit(1, id, pb.ResultCode_RESULT_CODE_RUNNING)
	keyID, _ := s.orgKey(0)
	if rec.GetKeyId() != keyID || len(rec.GetSignature()) != ed25519.SignatureSize {
		t.Fatalf("audit record %v", rec)
	}
	waitFor(t, 5*time.Second, "the node's audit in the cloud", func() bool { return len(s.cloudAudit()) >= 1 })
	// The node's key file permissions and the server's key file: 0600.
	st := s.link()
	if !st.Up || st.Connects != 1 {
		t.Fatalf("link %+v", st)
	}
}

// Each refusal: the node audits it with its reason and no miner is written to.
func TestSplitRefusesTamperedPayload(t *testing.T) {
	s := startSplit(t, splitOpts{})
	cmd := s.signed("tampered", s.mark()+1, 0, "sim-0")
	cmd.Payload = payload(t, pb.Action_ACTION_STOP_MINING, "sim-0") // changed after signing
	s.inject(cmd)
	s.audit(cmd.GetMonotonicSeq(), "tampered", pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE)
	s.assertNothingRan()
}

func TestSplitRefusesBadSignature(t *testing.T) {
	s := startSplit(t, splitOpts{})
	cmd := s.signed("badsig", s.mark()+1, 0, "sim-0")
	cmd.Signature[3] ^= 0x40
	s.inject(cmd)
	s.audit(cmd.GetMonotonicSeq(), "badsig", pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE)
	s.assertNothingRan()
}

func TestSplitRefusesReplayedSeq(t *testing.T) {
	s := startSplit(t, splitOpts{})
	id := s.command("stop", "sim-2")
	s.waitCommand(id, "succeeded")
	before := s.writes()
	if before != 1 {
		t.Fatalf("%d writes after one stop", before)
	}
	// The signed command exactly as the cloud sent it (the archive an attacker on the wire would have).
	var captured struct {
		Command map[string]any `json:"command"`
	}
	if st := s.do("GET", "/api/v1/nodes/"+s.nodeID+"/commands/1", nil, &captured); st != 200 {
		t.Fatalf("captured command: HTTP %d", st)
	}
	sent, err := s.srv.Server.Fleet().SentCommand(s.nodeID, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Replayed unchanged: not run again; the node answers with the recorded result (DUPLICATE).
	s.inject(sent)
	s.audit(1, id, pb.ResultCode_RESULT_CODE_DUPLICATE)
	// Replayed under another command id (not covered by the signature): refused, seq at or below the mark.
	again := proto.Clone(sent).(*pb.ControlCommand)
	again.CommandId = "replayed"
	s.inject(again)
	rec := s.audit(1, "replayed", pb.ResultCode_RESULT_CODE_REFUSED_SEQ)
	if !strings.Contains(rec.GetMessage(), "high-water mark") {
		t.Fatalf("message %q", rec.GetMessage())
	}
	time.Sleep(300 * time.Millisecond)
	if after := s.writes(); after != before {
		t.Fatalf("replay ran: %d writes, want %d", after, before)
	}
}

func TestSplitRefusesOutOfOrderSeq(t *testing.T) {
	s := startSplit(t, splitOpts{})
	// An authentic command at seq 10 for a device the node does not own consumes seq 10 without running.
	ahead := s.signed("ahead", 10, 0, "not-mine")
	s.inject(ahead)
	s.audit(10, "ahead", pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP)
	if m := s.mark(); m != 10 {
		t.Fatalf("mark %d", m)
	}
	// An authentic command at seq 7, delivered late: refused.
	late := s.signed("late", 7, 0, "sim-0")
	s.inject(late)
	s.audit(7, "late", pb.ResultCode_RESULT_CODE_REFUSED_SEQ)
	s.assertNothingRan()
}

func TestSplitRefusesWrongNodeID(t *testing.T) {
	s := startSplit(t, splitOpts{})
	keyID, priv := s.orgKey(0)
	cmd := signWith(t, keyID, priv, &pb.ControlCommand{CommandId: "elsewhere", Actor: "user:test", NodeId: "n0123456789abcdef",
		MonotonicSeq: s.mark() + 1, IdempotencyKey: "elsewhere", Payload: payload(t, pb.Action_ACTION_REBOOT, "sim-0")})
	s.inject(cmd)
	s.audit(cmd.GetMonotonicSeq(), "elsewhere", pb.ResultCode_RESULT_CODE_REFUSED_NODE)
	s.assertNothingRan()
}

func TestSplitRefusesRevokedKey(t *testing.T) {
	s := startSplit(t, splitOpts{})
	oldID, _ := s.orgKey(0)
	s.rotate(3600)
	var ch struct {
		KeyID string   `json:"key_id"`
		Nodes []string `json:"nodes"`
	}
	if st := s.do("POST", "/api/v1/keys/"+strings.TrimPrefix(oldID, "default/")+"/revoke", nil, &ch); st != 200 || ch.KeyID != oldID {
		t.Fatalf("revoke: HTTP %d %+v", st, ch)
	}
	waitFor(t, 10*time.Second, "the node to apply the revocation", func() bool { return s.nodeTrust(oldID) == "revoked" })
	cmd := s.signed("revoked-key", s.mark()+1, 0, "sim-0")
	s.inject(cmd)
	rec := s.audit(cmd.GetMonotonicSeq(), "revoked-key", pb.ResultCode_RESULT_CODE_REFUSED_KEY)
	if !strings.Contains(rec.GetMessage(), "revoked") {
		t.Fatalf("message %q", rec.GetMessage())
	}
	s.assertNothingRan()
}

func TestSplitRefusesKeyOfAnotherOrg(t *testing.T) {
	s := startSplit(t, splitOpts{})
	other, err := signing.NewOrgKeys("other-org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cmd := &pb.ControlCommand{CommandId: "other-org", Actor: "user:mallory", NodeId: s.nodeID, MonotonicSeq: s.mark() + 1,
		IdempotencyKey: "x", Payload: payload(t, pb.Action_ACTION_REBOOT, "sim-0")}
	if err := other.Sign(cmd, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.inject(cmd)
	rec := s.audit(cmd.GetMonotonicSeq(), "other-org", pb.ResultCode_RESULT_CODE_REFUSED_KEY)
	if !strings.Contains(rec.GetMessage(), "another org") && !strings.Contains(rec.GetMessage(), "belongs to org") {
		t.Fatalf("message %q", rec.GetMessage())
	}
	s.assertNothingRan()
}

func TestSplitRefusesDeviceNotOwned(t *testing.T) {
	s := startSplit(t, splitOpts{})
	// Signed by the org for this node, but naming a miner the cloud never paired with it.
	cmd := s.signed("not-owned", s.mark()+1, 0, "sim-0", "someone-elses-miner")
	s.inject(cmd)
	rec := s.audit(cmd.GetMonotonicSeq(), "not-owned", pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP)
	if !strings.Contains(rec.GetMessage(), "someone-elses-miner") {
		t.Fatalf("message %q", rec.GetMessage())
	}
	s.assertNothingRan()
	// And the cloud routes nothing for a miner no node owns.
	if st := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{"someone-elses-miner"}, "action": "reboot"}, nil); st != 400 {
		t.Fatalf("command for an unowned miner: HTTP %d, want 400", st)
	}
}

// A stolen api_key without the identity key opens no session; the refusal is in the security log.
func TestSplitAPIKeyWithoutIdentityKey(t *testing.T) {
	s := startSplit(t, splitOpts{})
	conn := s.gatewayConn()
	gw := pb.NewGatewayClient(conn)
	ctx := context.Background()
	ch, err := gw.Challenge(ctx, &pb.ChallengeRequest{NodeId: s.nodeID})
	if err != nil {
		t.Fatal(err)
	}
	_, thief, _ := ed25519.GenerateKey(rand.Reader)
	_, err = gw.OpenSession(ctx, &pb.OpenSessionRequest{NodeId: s.nodeID, ApiKey: s.node.Enrollment.APIKey, Nonce: ch.GetNonce(),
		Signature: ed25519.Sign(thief, signing.ChallengeBytes(s.nodeID, ch.GetNonce()))})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("api_key with another key's signature: %v, want Unauthenticated", err)
	}
	// Without any signature, and without a session token on a stream: refused too.
	if _, err := gw.OpenSession(ctx, &pb.OpenSessionRequest{NodeId: s.nodeID, ApiKey: s.node.Enrollment.APIKey}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("api_key alone: %v", err)
	}
	st, err := gw.ControlStream(metadata.AppendToOutgoingContext(ctx, "x-hashfleet-node", s.nodeID, "authorization", "Bearer "+s.node.Enrollment.APIKey))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream with the api_key as token: %v", err)
	}
	s.assertSecurityEvent("open_session", "bad session challenge signature")
	s.assertSecurityEvent("session", "bad session token")
	s.assertNothingRan()
}

// An expired session: the server (on a fake clock) ends the node's streams, refuses the old token, and the
// node opens a new session and carries on.
func TestSplitExpiredSession(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := startSplit(t, splitOpts{clock: clk, sessionTTL: time.Hour})
	old, exp, err := s.sessionNow()
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Until(exp) + time.Minute)
	if _, _, err := s.srv.Server.Registry().VerifySession(context.Background(), old); !errors.Is(err, enroll.ErrSessionExpired) {
		t.Fatalf("expired token: %v", err)
	}
	conn := s.gatewayConn()
	st, err := pb.NewGatewayClient(conn).Heartbeat(metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", s.nodeID, "authorization", "Bearer "+old))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("stream with an expired token: %v", err)
	}
	s.assertSecurityEvent("session", "expired")
	// The live streams were ended by the expiry; the node reconnects with a new session.
	waitFor(t, 10*time.Second, "the node to reconnect with a new session", func() bool { return s.link().Up && s.link().Connects >= 2 })
	s.assertNothingRan()
}

// Rotation: after the announcement commands signed with the new key are accepted; once the overlap is over
// the old key is refused.
func TestSplitKeyRotation(t *testing.T) {
	s := startSplit(t, splitOpts{})
	oldID, _ := s.orgKey(0)
	s.rotate(2)
	newID, _ := s.orgKey(1)
	id := s.command("stop", "sim-0")
	s.waitCommand(id, "succeeded")
	recs, _ := s.node.Node.Audit(0, 0)
	last := recs[len(recs)-1]
	if last.GetCommandId() != id || last.GetKeyId() != newID || last.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("command after rotation: %v", last)
	}
	// Within the overlap the old key still verifies; after it, refused as retired.
	waitFor(t, 5*time.Second, "the old key to retire", func() bool { return time.Now().After(s.retireAt(oldID)) })
	cmd := s.signed("old-key", s.mark()+1, 0, "sim-1")
	s.inject(cmd)
	rec := s.audit(cmd.GetMonotonicSeq(), "old-key", pb.ResultCode_RESULT_CODE_REFUSED_KEY)
	if !strings.Contains(rec.GetMessage(), "retired") {
		t.Fatalf("message %q", rec.GetMessage())
	}
	if w := s.fleet.Miner("sim-1").WriteLog(); len(w) != 0 {
		t.Fatalf("old key ran on sim-1: %v", w)
	}
}

// The seq high-water mark survives a node restart: a command the node ran before it stopped is not run again.
func TestSplitSeqMarkSurvivesNodeRestart(t *testing.T) {
	s := startSplit(t, splitOpts{})
	id := s.command("stop", "sim-0")
	s.waitCommand(id, "succeeded")
	mark := s.mark()
	s.stopNode()
	s.startNode()
	if m := s.mark(); m != mark {
		t.Fatalf("mark after restart %d, want %d", m, mark)
	}
	again := proto.Clone(s.sentCommand(mark)).(*pb.ControlCommand)
	again.CommandId = "after-restart"
	s.inject(again)
	s.audit(mark, "after-restart", pb.ResultCode_RESULT_CODE_REFUSED_SEQ)
	if s.writes() != 1 {
		t.Fatalf("%d writes", s.writes())
	}
	// A fresh command still runs.
	s.waitCommand(s.command("start", "sim-0"), "succeeded")
}

// A graceful server restart sends ControlGoaway and the node reconnects (backoff); a command queued while
// the server was down is delivered after.
func TestSplitServerGracefulRestart(t *testing.T) {
	s := startSplit(t, splitOpts{})
	before := s.link()
	s.stopServer()
	waitFor(t, 5*time.Second, "the node to see the goaway", func() bool { return s.link().Goaways > before.Goaways })
	s.startServer()
	waitFor(t, 10*time.Second, "the node to reconnect", func() bool { st := s.link(); return st.Up && st.Connects > before.Connects })
	s.waitMining(3)
	s.waitCommand(s.command("reboot", "sim-2"), "succeeded")
}

func (s *splitSite) rotate(overlapS int) {
	s.t.Helper()
	var ch struct {
		KeyID string   `json:"key_id"`
		Nodes []string `json:"nodes"`
	}
	if st := s.do("POST", "/api/v1/keys/rotate", map[string]any{"overlap_s": overlapS}, &ch); st != 200 || len(ch.Nodes) != 1 || ch.Nodes[0] != s.nodeID {
		s.t.Fatalf("rotate: HTTP %d %+v", st, ch)
	}
	waitFor(s.t, 10*time.Second, "the node to trust the announced key", func() bool { return s.nodeTrust(ch.KeyID) == "trusted" })
}

func (s *splitSite) nodeTrust(keyID string) string {
	_, keys, ok := s.node.Node.TrustedKeys()
	if !ok {
		s.t.Fatal("node has no keyring")
	}
	for _, k := range keys {
		if k.GetKeyId() == keyID {
			if k.GetRevoked() {
				return "revoked"
			}
			return "trusted"
		}
	}
	return ""
}

func (s *splitSite) retireAt(keyID string) time.Time {
	_, keys, _ := s.node.Node.TrustedKeys()
	for _, k := range keys {
		if k.GetKeyId() == keyID && k.GetRetireAfterUnixMs() > 0 {
			return time.UnixMilli(k.GetRetireAfterUnixMs())
		}
	}
	s.t.Fatalf("key %s has no retirement on the node", keyID)
	return time.Time{}
}

func (s *splitSite) sentCommand(seq uint64) *pb.ControlCommand {
	s.t.Helper()
	c, err := s.srv.Server.Fleet().SentCommand(s.nodeID, seq)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *splitSite) assertNothingRan() {
	s.t.Helper()
	time.Sleep(200 * time.Millisecond)
	for _, m := range s.fleet.Miners() {
		if w := m.WriteLog(); len(w) != 0 {
			s.t.Fatalf("%s was written to: %+v", m.ID(), w)
		}
	}
}

func (s *splitSite) assertSecurityEvent(kind, reason string) {
	s.t.Helper()
	var out struct {
		Events []struct {
			Kind, Result, Reason string
		} `json:"events"`
	}
	waitFor(s.t, 5*time.Second, "security event "+kind+" "+reason, func() bool {
		if s.do("GET", "/api/v1/security-events", nil, &out) != 200 {
			return false
		}
		for _, e := range out.Events {
			if e.Kind == kind && e.Result == "refused" && strings.Contains(e.Reason, reason) {
				return true
			}
		}
		return false
	})
}

// gatewayConn is a TLS connection to the gateway pinned to the server's CA, as an attacker who has the CA
// (it is public) would have.
func (s *splitSite) gatewayConn() *grpc.ClientConn {
	s.t.Helper()
	tc, err := tlsca.ClientTLSConfig(s.srv.CA.CAPEM())
	if err != nil {
		s.t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.srv.GatewayAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// sessionNow opens a session the way the node does and returns the token and its expiry.
func (s *splitSite) sessionNow() (string, time.Time, error) {
	idDir := s.nodeDir + "/" + nodeIdentityDir
	id, err := loadIdentity(idDir)
	if err != nil {
		return "", time.Time{}, err
	}
	conn := s.gatewayConn()
	gw := pb.NewGatewayClient(conn)
	ch, err := gw.Challenge(context.Background(), &pb.ChallengeRequest{NodeId: s.nodeID})
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := gw.OpenSession(context.Background(), &pb.OpenSessionRequest{NodeId: s.nodeID, ApiKey: s.node.Enrollment.APIKey,
		Nonce: ch.GetNonce(), Signature: id.SignChallenge(ch.GetNonce(), s.nodeID)})
	if err != nil {
		return "", time.Time{}, err
	}
	return tok.GetToken(), time.UnixMilli(tok.GetExpiresAtUnixMs()), nil
}
