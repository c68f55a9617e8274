package cloudcluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const authToken = "cluster-auth-admin-token-0123456789"

// authCluster is three `hashfleet server` cluster members (bootstrap.StartClusterMember) with a shared KEK
// on a real etcd and Postgres, each serving its TLS cluster gateway and /cluster/v1 on loopback.
type authCluster struct {
	t       *testing.T
	members []*bootstrap.ClusterMember
}

func startAuthCluster(t *testing.T) *authCluster {
	t.Helper()
	etcd := testsvc.StartEtcd(t)
	dsn := testsvc.SharedPostgres(t).NewDatabase(t)
	kek, _ := writeKEK(t)
	opts := func() bootstrap.ClusterOptions {
		return bootstrap.ClusterOptions{EtcdEndpoints: []string{etcd.Endpoint}, PostgresDSN: dsn,
			Listen: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)), HTTPListen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0",
			KEKFile: kek, DataDir: t.TempDir()}
	}
	c := &authCluster{t: t, members: make([]*bootstrap.ClusterMember, 3)}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, cm := range c.members {
			if cm != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					cm.Stop(ctx)
				}()
			}
		}
		wg.Wait()
	})
	// A and B start at the same moment on an empty database; C joins after.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.members[i], errs[i] = bootstrap.StartClusterMember(context.Background(), opts(), authToken, quiet)
		}()
	}
	wg.Wait()
	c.members[2], errs[2] = bootstrap.StartClusterMember(context.Background(), opts(), authToken, quiet)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, cm := range c.members {
			ok = ok && len(cm.Member.Members()) == 3
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("members did not see each other")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// do calls member i's /cluster/v1 with the admin token.
func (c *authCluster) do(i int, method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+c.members[i].HTTPAddr+path, rd)
	req.Header.Set("Authorization", "Bearer "+authToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	if res.StatusCode >= 300 {
		c.t.Logf("%s %s: HTTP %d %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode
}

// enroll mints a code on member mint, enrolls a real node (bootstrap.Enroll, TLS, CA pinned by the
// fingerprint the member reports) through member gw's gateway, finds it pending on member list and
// confirms its printed fingerprint on member confirm.
func (c *authCluster) enroll(mint, gw, list, confirm int) (nodeDir, nodeID string) {
	t := c.t
	t.Helper()
	var code struct {
		Code          string `json:"code"`
		CAFingerprint string `json:"ca_fingerprint"`
	}
	if st := c.do(mint, "POST", "/cluster/v1/enrollment/codes", map[string]any{"site": "s1"}, &code); st != http.StatusCreated {
		t.Fatalf("mint: HTTP %d", st)
	}
	nodeDir = t.TempDir()
	out := &syncBuffer{}
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := bootstrap.Enroll(context.Background(), bootstrap.EnrollOptions{Server: c.members[gw].GatewayAddr, Code: code.Code,
			DataDir: nodeDir, CAFingerprint: code.CAFingerprint, Name: "n", PollInterval: 20 * time.Millisecond, Logger: quiet}, out)
		done <- result{e.NodeID, err}
	}()
	var printed string
	waitUntil(t, 10*time.Second, "the node to print its fingerprint", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if f, ok := strings.CutPrefix(l, "node identity fingerprint: "); ok {
				printed = f
				return true
			}
		}
		return false
	})
	var pending struct {
		Nodes []struct {
			NodeID      string `json:"node_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"nodes"`
	}
	waitUntil(t, 10*time.Second, "the node pending on another member", func() bool {
		return c.do(list, "GET", "/cluster/v1/enrollment/pending", nil, &pending) == 200 && len(pending.Nodes) == 1
	})
	if pending.Nodes[0].Fingerprint != printed {
		t.Fatalf("pending fingerprint %s, printed %s", pending.Nodes[0].Fingerprint, printed)
	}
	if st := c.do(confirm, "POST", "/cluster/v1/enrollment/nodes/"+pending.Nodes[0].NodeID+"/confirm",
		map[string]string{"fingerprint": printed}, nil); st != http.StatusOK {
		t.Fatalf("confirm: HTTP %d", st)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("enroll: %v\n%s", r.err, out.String())
		}
		return nodeDir, r.id
	case <-time.After(10 * time.Second):
		t.Fatalf("enrollment did not finish:\n%s", out.String())
	}
	return "", ""
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitUntil(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialTLS connects to a gateway trusting only caPEM, presenting cert when given.
func dialTLS(t *testing.T, addr string, caPEM []byte, cert *tls.Certificate) pb.GatewayClient {
	t.Helper()
	var opts []tlsca.ClientOption
	if cert != nil {
		opts = append(opts, tlsca.WithClientCertificate(*cert))
	}
	tc, err := tlsca.ClientTLSConfig(caPEM, opts...)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewGatewayClient(conn)
}

// hello opens a control stream for node with token and sends its hello: nil and the HelloAck when the
// gateway accepts it, else the status it ended the stream with.
func hello(gc pb.GatewayClient, node, token string) (*pb.HelloAck, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md := []string{gateway.MetadataNode, node}
	if token != "" {
		md = append(md, "authorization", "Bearer "+token)
	}
	cs, err := gc.ControlStream(metadata.AppendToOutgoingContext(ctx, md...))
	if err != nil {
		return nil, err
	}
	if err := cs.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: node, SessionToken: token}}}); err != nil {
		_, err = cs.Recv()
		return nil, err
	}
	for {
		f, err := cs.Recv()
		if err != nil {
			return nil, err
		}
		if a := f.GetHelloAck(); a != nil {
			_ = cs.CloseSend()
			return a, nil
		}
	}
}

func codeOf(err error) codes.Code { return status.Code(err) }

// TestClusterNodeAuthEndToEnd is issue #11's scenario on three real members (etcd, Postgres, a shared KEK):
// members starting together agree on one CA, secret and key set; a real node enrolls through member A's
// TLS gateway (code minted on C, confirmed on C after listing on B); a challenge from A is answered on C
// and the session streams on B; the node runs against B and executes a command issued on C, signed with the
// shared key, while an unsigned and a forged command delivered on its stream are refused by its CommandGate;
// a client claiming the node's id without its certificate or session is refused on every member; revoking
// the node on A ends its stream on B and every member refuses it afterwards.
func TestClusterNodeAuthEndToEnd(t *testing.T) {
	skipUnderRace(t)
	c := startAuthCluster(t)
	A, B, C := c.members[0], c.members[1], c.members[2]

	// One CA, secret and key set, whoever created them.
	for i, cm := range c.members {
		if !bytes.Equal(cm.Secrets.CACertPEM, A.Secrets.CACertPEM) || !bytes.Equal(cm.Secrets.EnrollSecret, A.Secrets.EnrollSecret) ||
			!proto.Equal(cm.Secrets.Signer.Keys()[0], A.Secrets.Signer.Keys()[0]) || cm.CA.Fingerprint() != A.CA.Fingerprint() {
			t.Fatalf("member %d has other shared secrets", i)
		}
	}
	if n := len(A.Secrets.Created) + len(B.Secrets.Created); n != 3 || len(C.Secrets.Created) != 0 {
		t.Fatalf("secrets created: A %v, B %v, C %v", A.Secrets.Created, B.Secrets.Created, C.Secrets.Created)
	}
	caPEM := A.Secrets.CACertPEM

	nodeDir, nodeID := c.enroll(2, 0, 1, 2)
	idDir := filepath.Join(nodeDir, "identity")
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
		t.Fatalf("the node got no client certificate: %v", err)
	}
	if enr.CAPEM != string(caPEM) {
		t.Fatal("the node pinned another CA")
	}

	// Challenge on A, OpenSession on C, stream on B, each over mTLS with the node's certificate.
	withCert := make([]pb.GatewayClient, 3)
	noCert := make([]pb.GatewayClient, 3)
	for i, cm := range c.members {
		withCert[i] = dialTLS(t, cm.GatewayAddr, caPEM, &cert)
		noCert[i] = dialTLS(t, cm.GatewayAddr, caPEM, nil)
	}
	ctx := context.Background()
	ch, err := withCert[0].Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	open := &pb.OpenSessionRequest{NodeId: nodeID, ApiKey: enr.APIKey, Nonce: ch.GetNonce(), Signature: id.SignChallenge(ch.GetNonce(), nodeID)}
	tok, err := withCert[2].OpenSession(ctx, open)
	if err != nil {
		t.Fatalf("open session on C with A's challenge: %v", err)
	}
	if _, err := withCert[1].OpenSession(ctx, open); codeOf(err) != codes.Unauthenticated {
		t.Fatalf("the same challenge answered again on B: %v", err)
	}
	// Timing of the cross-member session handshake (docs/BENCHMARKS.md).
	var rounds []time.Duration
	for i := range 20 {
		t0 := time.Now()
		ch, err := withCert[i%3].Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := withCert[(i+1)%3].OpenSession(ctx, &pb.OpenSessionRequest{NodeId: nodeID, ApiKey: enr.APIKey, Nonce: ch.GetNonce(),
			Signature: id.SignChallenge(ch.GetNonce(), nodeID)}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		rounds = append(rounds, time.Since(t0))
	}
	slices.Sort(rounds)
	t.Logf("challenge on one member + open session on the next, 20 rounds over mTLS: median %s, max %s",
		rounds[len(rounds)/2].Round(10*time.Microsecond), rounds[len(rounds)-1].Round(10*time.Microsecond))
	ack, err := hello(withCert[1], nodeID, tok.GetToken())
	if err != nil {
		t.Fatalf("stream on B with C's session: %v", err)
	}
	if len(ack.GetCommandKeys()) != 1 || !proto.Equal(ack.GetCommandKeys()[0], C.Secrets.Signer.Keys()[0]) {
		t.Fatalf("HelloAck keys %v", ack.GetCommandKeys())
	}

	// Claiming the node's id without its certificate, or its session, is refused on every member.
	for i := range c.members {
		if _, err := noCert[i].Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID}); codeOf(err) != codes.Unauthenticated {
			t.Errorf("member %d: challenge without a certificate: %v", i, err)
		}
		if _, err := hello(noCert[i], nodeID, tok.GetToken()); codeOf(err) != codes.Unauthenticated {
			t.Errorf("member %d: stolen session token without the certificate: %v", i, err)
		}
		if _, err := hello(noCert[i], nodeID, ""); codeOf(err) != codes.Unauthenticated {
			t.Errorf("member %d: bare node-id metadata: %v", i, err)
		}
		if _, err := hello(withCert[i], nodeID, "forged."+tok.GetToken()); codeOf(err) != codes.Unauthenticated {
			t.Errorf("member %d: forged token with the certificate: %v", i, err)
		}
		if _, err := hello(withCert[i], "n0000000000000000", tok.GetToken()); codeOf(err) != codes.Unauthenticated &&
			codeOf(err) != codes.PermissionDenied {
			t.Errorf("member %d: the node's token and certificate for another node id: %v", i, err)
		}
	}
	// A client certificate from another CA fails the handshake.
	otherCA, err := tlsca.LoadOrCreate(tlsca.DefaultConfig(filepath.Join(t.TempDir(), "other")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreignPEM, err := otherCA.IssueClientCert(nodeID, cert.Leaf.PublicKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(foreignPEM, mustKeyPEM(t, idDir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, B.GatewayAddr, caPEM, &foreign).Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}

	// The real node runs against member B.
	enr.ServerURL = "grpcs://" + B.GatewayAddr
	if err := identity.SaveEnrollment(idDir, enr); err != nil {
		t.Fatal(err)
	}
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
	linkUp := func() bool {
		lctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, _ := np.Node.LinkStatus(lctx)
		return st.Up
	}
	waitUntil(t, 15*time.Second, "the node's link to B", linkUp)
	var ns struct {
		StreamMember string `json:"stream_member"`
		Connected    bool   `json:"connected"`
	}
	waitUntil(t, 10*time.Second, "C to see the node's stream on B", func() bool {
		return c.do(2, "GET", "/cluster/v1/nodes/"+nodeID, nil, &ns) == 200 && ns.StreamMember == B.Member.ID()
	})

	// A command issued on C, signed with the shared key, runs on the node.
	scan := func(id string) []byte {
		b, _ := proto.Marshal(&pb.CommandPayload{Discovery: &pb.DiscoveryRequest{ScanId: id, Targets: []string{"127.0.0.1"},
			CgminerPorts: []int32{int32(testsvc.FreePort(t))}}})
		return b
	}
	var issued struct {
		Seq          uint64 `json:"seq"`
		Sent         bool   `json:"sent"`
		StreamMember string `json:"stream_member"`
	}
	if st := c.do(2, "POST", "/cluster/v1/nodes/"+nodeID+"/commands", map[string]any{"command_id": "scan-1", "actor": "user:ops",
		"payload": scan("scan-1")}, &issued); st != 200 || issued.Seq != 1 || !issued.Sent || issued.StreamMember != B.Member.ID() {
		t.Fatalf("issue on C: HTTP %d %+v", st, issued)
	}
	keyID := C.Secrets.Signer.Keys()[0].GetKeyId()
	rec := waitAudit(t, np, 1, "scan-1")
	if rec.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING && rec.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || rec.GetKeyId() != keyID {
		t.Fatalf("signed command: %v", rec)
	}
	t.Logf("issued on C, ran on the node via B: seq %d %s key %s", rec.GetMonotonicSeq(), rec.GetCode(), rec.GetKeyId())

	// Unsigned and forged commands delivered on the node's stream (as a compromised path would) are refused
	// by its CommandGate and do not consume a seq.
	link, err := B.Member.Fleet().NodePID(ctx, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(cmd *pb.ControlCommand) {
		B.Member.System().Root.Send(link, &pb.ClusterDeliver{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: cmd}}})
	}
	unsigned := &pb.ControlCommand{CommandId: "unsigned", Actor: "user:evil", NodeId: nodeID, MonotonicSeq: 2, IdempotencyKey: "unsigned",
		Payload: scan("unsigned")}
	deliver(unsigned)
	if r := waitAudit(t, np, 2, "unsigned"); r.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_KEY && r.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE {
		t.Fatalf("unsigned command: %v", r)
	} else {
		t.Logf("unsigned: %s %s", r.GetCode(), r.GetMessage())
	}
	evil, err := signing.NewOrgKeys("default", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged := &pb.ControlCommand{CommandId: "forged", Actor: "user:evil", NodeId: nodeID, MonotonicSeq: 2, IdempotencyKey: "forged",
		Payload: scan("forged")}
	if err := evil.Sign(forged, time.Now()); err != nil {
		t.Fatal(err)
	}
	forged.KeyId = keyID // claims the org's key; the signature is another key's
	deliver(forged)
	if r := waitAudit(t, np, 2, "forged"); r.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE {
		t.Fatalf("forged command: %v", r)
	} else {
		t.Logf("forged: %s %s", r.GetCode(), r.GetMessage())
	}
	if st := c.do(0, "POST", "/cluster/v1/nodes/"+nodeID+"/commands", map[string]any{"command_id": "scan-2", "actor": "user:ops",
		"payload": scan("scan-2")}, &issued); st != 200 || issued.Seq != 2 {
		t.Fatalf("issue on A: HTTP %d %+v", st, issued)
	}
	if r := waitAudit(t, np, 2, "scan-2"); r.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING && r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("signed command after the refusals: %v", r)
	}

	// Revoked on A: its stream on B ends now, and every member refuses it.
	var rev struct {
		StreamsCut int      `json:"streams_cut"`
		Unreached  []string `json:"unreached"`
	}
	revokeAt := time.Now()
	if st := c.do(0, "POST", "/cluster/v1/enrollment/nodes/"+nodeID+"/revoke", nil, &rev); st != 200 || rev.StreamsCut < 1 || len(rev.Unreached) != 0 {
		t.Fatalf("revoke: HTTP %d %+v", st, rev)
	}
	waitUntil(t, 5*time.Second, "the revoked node's link to go down", func() bool { return !linkUp() })
	t.Logf("revoked on A: %d stream(s) cut on B; the node's link was down %s after the revoke call began",
		rev.StreamsCut, time.Since(revokeAt).Round(time.Millisecond))
	for i := range c.members {
		if _, err := withCert[i].Challenge(ctx, &pb.ChallengeRequest{NodeId: nodeID}); codeOf(err) != codes.PermissionDenied {
			t.Errorf("member %d: challenge of a revoked node: %v", i, err)
		}
		if _, err := hello(withCert[i], nodeID, tok.GetToken()); codeOf(err) != codes.Unauthenticated && codeOf(err) != codes.PermissionDenied {
			t.Errorf("member %d: stream of a revoked node: %v", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // several reconnect attempts
	if linkUp() {
		t.Fatal("the revoked node got a stream again")
	}
	stopNode()
}

func mustKeyPEM(t *testing.T, idDir string) []byte {
	t.Helper()
	key, _, err := identity.LoadOrCreateTLSKey(idDir)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func waitAudit(t *testing.T, np *bootstrap.NodeProcess, seq uint64, commandID string) *pb.AuditRecord {
	t.Helper()
	var found *pb.AuditRecord
	waitUntil(t, 10*time.Second, fmt.Sprintf("audit of seq %d %s", seq, commandID), func() bool {
		recs, err := np.Node.Audit(0, 0)
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.GetMonotonicSeq() == seq && r.GetCommandId() == commandID {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// TestClusterMemberRefusesBadSecrets: `hashfleet server --cluster-kek-file` refuses a group/world-readable
// KEK before touching the store, and a KEK other than the one the cluster's secrets were sealed under
// with ErrWrongKEK, leaving the stored secrets as they were; the enrollment endpoints answer hostile
// requests with 4xx.
func TestClusterMemberRefusesBadSecrets(t *testing.T) {
	skipUnderRace(t)
	etcd := testsvc.StartEtcd(t)
	dsn := testsvc.SharedPostgres(t).NewDatabase(t)
	kek, _ := writeKEK(t)
	wrong, _ := writeKEK(t)
	opts := func(kekFile string) bootstrap.ClusterOptions {
		return bootstrap.ClusterOptions{EtcdEndpoints: []string{etcd.Endpoint}, PostgresDSN: dsn,
			Listen: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)), HTTPListen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0",
			KEKFile: kekFile, DataDir: t.TempDir()}
	}
	loose := filepath.Join(t.TempDir(), "loose")
	raw, _ := os.ReadFile(kek)
	if err := os.WriteFile(loose, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.StartClusterMember(context.Background(), opts(loose), authToken, quiet); !errors.Is(err, cloudcluster.ErrKEK) ||
		!strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable KEK: %v", err)
	}
	cm, err := bootstrap.StartClusterMember(context.Background(), opts(kek), authToken, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Stop(context.Background())
	before := dumpSecrets(t, cm.Store)
	if _, err := bootstrap.StartClusterMember(context.Background(), opts(wrong), authToken, quiet); !errors.Is(err, cloudcluster.ErrWrongKEK) {
		t.Fatalf("wrong KEK: %v", err)
	}
	if after := dumpSecrets(t, cm.Store); after != before {
		t.Fatal("a member with the wrong KEK changed the stored secrets")
	}

	post := func(path, body, token string) int {
		req, _ := http.NewRequest("POST", "http://"+cm.HTTPAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name, path, body, token string
		want                    int
	}{
		{"wrong token", "/cluster/v1/enrollment/codes", `{}`, "wrong-token-wrong-token", http.StatusUnauthorized},
		{"malformed body", "/cluster/v1/enrollment/codes", `{"site":`, authToken, http.StatusBadRequest},
		{"unknown field", "/cluster/v1/enrollment/codes", `{"sites":"x"}`, authToken, http.StatusBadRequest},
		{"negative ttl", "/cluster/v1/enrollment/codes", `{"ttl_seconds":-5}`, authToken, http.StatusBadRequest},
		{"huge ttl", "/cluster/v1/enrollment/codes", `{"ttl_seconds":999999999999}`, authToken, http.StatusBadRequest},
		{"long site", "/cluster/v1/enrollment/codes", `{"site":"` + strings.Repeat("x", 200) + `"}`, authToken, http.StatusBadRequest},
		{"confirm unknown node", "/cluster/v1/enrollment/nodes/n0123456789abcdef/confirm", `{"fingerprint":"x"}`, authToken, http.StatusNotFound},
		{"confirm bad node id", "/cluster/v1/enrollment/nodes/..%2f..%2fetc/confirm", `{"fingerprint":"x"}`, authToken, http.StatusNotFound},
		{"revoke unknown node", "/cluster/v1/enrollment/nodes/n0123456789abcdef/revoke", ``, authToken, http.StatusNotFound},
		{"mint ok", "/cluster/v1/enrollment/codes", `{"site":"s"}`, authToken, http.StatusCreated},
	} {
		if got := post(tc.path, tc.body, tc.token); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
}
