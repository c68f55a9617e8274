package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
	"github.com/hashfleet/hashfleet/server/keys"
	"github.com/hashfleet/hashfleet/server/tlsca"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// badgerDirs returns every Badger directory under root (one holding a MANIFEST).
func badgerDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "MANIFEST" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// scanBadger opens a stopped process's Badger directory and reports every key whose key or value holds
// needle (every version of every key, values read whole).
func scanBadger(t *testing.T, dir string, needle []byte) (keys int, hits []string) {
	t.Helper()
	opts := badger.DefaultOptions(dir).WithLogger(nil).WithReadOnly(false)
	db, err := badger.Open(opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		io := badger.DefaultIteratorOptions
		io.AllVersions = true
		it := txn.NewIterator(io)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			keys++
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if bytes.Contains(item.Key(), needle) || bytes.Contains(v, needle) {
				hits = append(hits, string(item.KeyCopy(nil)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return keys, hits
}

// scanFiles reports every regular file under root whose raw bytes hold needle (logs, WAL, value logs,
// identity files, anything the process left).
func scanFiles(t *testing.T, root string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestSplitPoolPasswordsSealed: update_pools through the API of a split deployment (real TLS gateway, real
// simulated miners) sets the operator's pool password on every miner, while the password is sealed at the
// API to the owning node: the command record and its signed payload hold envelopes only, and after both
// processes stop, no value of the cloud's or the node's Badger store (nor any file they wrote) holds the
// plaintext. The node's envelope opens with its real credential key and not with another enrolled node's.
func TestSplitPoolPasswordsSealed(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 2})
	other := s.enrollSecondNode()

	ids, secret, commandID := s.updatePoolsSealed()
	res := struct{ CommandID string }{commandID}

	// The record the API serves, the record the cloud keeps and the signed command it sent carry no
	// plaintext; the record carries one envelope per miner for this (unpaired) node.
	var view json.RawMessage
	if st := s.do("GET", "/api/v1/commands/"+res.CommandID, nil, &view); st != 200 || bytes.Contains(view, []byte(secret)) {
		t.Fatalf("command view: HTTP %d %s", st, view)
	}
	rec, err := s.srv.Server.Fleet().Command(t.Context(), res.CommandID)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rec.GetSpec().GetSealed()); got != len(ids) || rec.GetSpec().GetPools()[0].GetPassword() != "" {
		t.Fatalf("record spec: %d sealed, pools %v", got, rec.GetSpec().GetPools())
	}
	sent, err := s.srv.Server.Fleet().SentCommand(s.nodeID, s.mark())
	if err != nil {
		t.Fatal(err)
	}
	var payload pb.CommandPayload
	if err := proto.Unmarshal(sent.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sent.GetPayload(), []byte(secret)) || len(payload.GetSpec().GetSealed()) != len(ids) {
		t.Fatalf("signed payload: %d sealed, or the plaintext in it", len(payload.GetSpec().GetSealed()))
	}

	// The node's envelope: its own key opens it; the other node's real key does not, under either binding.
	env, err := sealing.Parse(rec.GetSpec().GetSealed()[0].GetEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	nodeID, err := loadIdentity(filepath.Join(s.nodeDir, nodeIdentityDir))
	if err != nil {
		t.Fatal(err)
	}
	mine, err := nodeID.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pt, err := sealing.Open(mine, env, s.nodeID, env.DeviceID, env.Purpose)
	if err != nil || string(pt) != secret {
		t.Fatalf("the owning node cannot open its envelope: %v", err)
	}
	theirs, err := other.id.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, as := range []string{other.nodeID, s.nodeID} {
		if _, err := sealing.Open(theirs, env, as, env.DeviceID, env.Purpose); err == nil {
			t.Fatalf("node %s's key opened node %s's envelope (as %s)", other.nodeID, s.nodeID, as)
		}
	}

	s.stopNode()
	s.stopServer()
	needle := []byte(secret)
	for _, root := range []string{s.srvOpts.DataDir, s.nodeDir} {
		dirs := badgerDirs(t, root)
		if len(dirs) == 0 {
			t.Fatalf("no Badger store under %s", root)
		}
		for _, d := range dirs {
			keys, hits := scanBadger(t, d, needle)
			if len(hits) > 0 {
				t.Errorf("%s: %d of %d values hold the plaintext: %v", d, len(hits), keys, hits)
			}
			if keys == 0 {
				t.Errorf("%s: scanned no key", d)
			}
		}
		if hits := scanFiles(t, root, needle); len(hits) > 0 {
			t.Errorf("files holding the plaintext: %v", hits)
		}
	}
}

// updatePoolsSealed issues update_pools with a fresh random pool password to every miner through the API,
// waits for it to succeed, and checks that every simulated miner got the plaintext.
func (s *splitSite) updatePoolsSealed() (ids []string, secret, commandID string) {
	s.t.Helper()
	var r [12]byte
	_, _ = rand.Read(r[:])
	secret = "pool-pw-" + hex.EncodeToString(r[:])
	for _, d := range s.fleet.Devices() {
		ids = append(ids, d.GetMinerId())
	}
	var res struct {
		CommandID string `json:"command_id"`
	}
	body := map[string]any{"miner_ids": ids, "action": "update_pools", "pools": []map[string]any{
		{"url": "stratum+tcp://pool.example:3333", "user": "acct.worker", "password": secret, "priority": 0},
		{"url": "stratum+tcp://backup.example:3333", "user": "acct.worker", "priority": 1},
	}}
	if st := s.do("POST", "/api/v1/commands", body, &res); st != 202 {
		s.t.Fatalf("update_pools: HTTP %d", st)
	}
	s.waitCommand(res.CommandID, "succeeded")
	for _, m := range s.fleet.Miners() {
		pools := m.Snapshot().Pools
		if len(pools) != 2 || pools[0].Password != secret || pools[0].User != "acct.worker" {
			s.t.Fatalf("miner pools %+v", pools)
		}
	}
	return ids, secret, res.CommandID
}

// TestSplitRevokeNode: revoking a node through the API cuts it off at once over the real gateway (its open
// streams end, its next streams and sessions are refused, so its link stays down), and every credential it
// could read (the pool passwords sealed to it) shows as revocation-pending in the API.
func TestSplitRevokeNode(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 2})
	ids, _, _ := s.updatePoolsSealed()

	// A session minted before the revocation, the way the node does it.
	token, _, err := s.sessionNow()
	if err != nil {
		t.Fatal(err)
	}

	// Through `hashfleet ctl nodes revoke` (the real API client).
	cl, err := apiclient.New(s.base, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	if err := CtlRevokeNode(t.Context(), CtlOptions{Client: cl, Out: out}, s.nodeID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revoked node "+s.nodeID) {
		t.Fatalf("ctl output %q", out.String())
	}
	slices.Sort(ids)
	if want := "revocation-pending: " + strings.Join(ids, ", "); !strings.Contains(out.String(), want) ||
		strings.Contains(out.String(), ": 0 open streams") {
		t.Fatalf("ctl output %q: want streams ended and %q", out.String(), want)
	}
	// Revoking again is harmless: nothing left to change.
	rev, err := cl.RevokeNode(t.Context(), s.nodeID)
	if err != nil || rev.NodeID != s.nodeID || len(rev.Devices) != 0 {
		t.Fatalf("second revocation %+v: %v", rev, err)
	}
	s.waitLink(false)
	// Its api_key opens no session any more, and the token it held opens no stream.
	if _, _, err := s.sessionNow(); err == nil {
		t.Fatal("a revoked node opened a session")
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", s.nodeID,
		"authorization", "Bearer "+token), 5*time.Second)
	defer cancel()
	hb, err := pb.NewGatewayClient(s.gatewayConn()).Heartbeat(ctx)
	if err == nil {
		_ = hb.Send(&pb.HeartbeatPing{NodeId: s.nodeID})
		_, err = hb.Recv()
	}
	if status.Code(err) != codes.Unauthenticated && status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream with the revoked node's old token: %v", err)
	}
	// The node keeps trying (backoff up to 1s): every attempt is refused.
	time.Sleep(2 * time.Second)
	if s.link().Up {
		t.Fatal("a revoked node got its link back")
	}
	var events struct {
		Events []struct {
			Kind   string `json:"kind"`
			Node   string `json:"node"`
			Result string `json:"result"`
		} `json:"events"`
	}
	if st := s.do("GET", "/api/v1/security-events", nil, &events); st != 200 {
		t.Fatalf("security events: HTTP %d", st)
	}
	refused := 0
	for _, e := range events.Events {
		if e.Node == s.nodeID && e.Result == "refused" {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("no refused session or stream of the revoked node in %+v", events.Events)
	}

	var pending struct {
		Devices []struct {
			DeviceID    string `json:"device_id"`
			State       string `json:"state"`
			Credentials []struct {
				Purpose        string   `json:"purpose"`
				State          string   `json:"state"`
				RevokedReaders []string `json:"revoked_readers"`
			} `json:"credentials"`
		} `json:"devices"`
	}
	if st := s.do("GET", "/api/v1/credentials?state=revocation-pending", nil, &pending); st != 200 || len(pending.Devices) != len(ids) {
		t.Fatalf("pending credentials: HTTP %d %+v", st, pending)
	}
	for _, d := range pending.Devices {
		if d.State != "revocation-pending" || len(d.Credentials) == 0 || d.Credentials[0].State != "revocation-pending" ||
			!slices.Contains(d.Credentials[0].RevokedReaders, s.nodeID) {
			t.Fatalf("device %+v", d)
		}
	}
	out.Reset()
	if err := CtlCredentials(t.Context(), CtlOptions{Client: cl, Out: out}, "revocation-pending"); err != nil ||
		strings.Count(out.String(), "revocation-pending") != len(ids) {
		t.Fatalf("ctl nodes credentials: %v\n%s", err, out.String())
	}
	if st := s.do("GET", "/api/v1/credentials?state=bogus", nil, nil); st != 400 {
		t.Fatalf("bad state: HTTP %d", st)
	}
	if st := s.do("GET", "/api/v1/devices/"+ids[0]+"/credentials", nil, nil); st != 200 {
		t.Fatalf("device credentials: HTTP %d", st)
	}
	if st := s.do("POST", "/api/v1/nodes/no-such-node/revoke", nil, nil); st != 404 {
		t.Fatalf("unknown node: HTTP %d", st)
	}
	// A command to the revoked node's devices cannot seal their pool passwords to it any more.
	body := map[string]any{"miner_ids": ids[:1], "action": "update_pools", "pools": []map[string]any{
		{"url": "stratum+tcp://pool.example:3333", "user": "acct.worker", "password": "another", "priority": 0}}}
	if st := s.do("POST", "/api/v1/commands", body, nil); st != 400 {
		t.Fatalf("update_pools to a revoked node's device: HTTP %d", st)
	}
}

// TestSplitStartRefusesReadableKeyFiles: every private key file a split server and node read at start-up
// is checked for group/world access: with one of them at 0644 the process refuses to start, naming the file
// and the chmod that fixes it; restored to 0600 it starts again.
func TestSplitStartRefusesReadableKeyFiles(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 1})
	s.stopNode()
	idDir := filepath.Join(s.nodeDir, nodeIdentityDir)
	nodeFiles := []string{identity.IdentityKeyFile, identity.MinerSigningKeyFile, identity.CredentialKeyFile}
	if _, err := os.Stat(filepath.Join(idDir, identity.TLSKeyFile)); err == nil {
		nodeFiles = append(nodeFiles, identity.TLSKeyFile)
	}
	o := NodeRunOptions{DataDir: s.nodeDir, Devices: s.fleet.Devices(), Logger: quietLogger()}
	for _, name := range nodeFiles {
		refusesReadable(t, filepath.Join(idDir, name), func() error {
			p, err := StartNode(context.Background(), o)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.Stop(ctx)
			}
			return err
		})
	}
	s.startNode()
	s.stopNode()

	s.stopServer()
	for _, p := range []string{filepath.Join(s.srvOpts.DataDir, "tls", tlsca.CAKeyFile),
		filepath.Join(s.srvOpts.DataDir, "keys", keys.FileName("default"))} {
		refusesReadable(t, p, func() error {
			p, err := StartServer(context.Background(), s.srvOpts)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.Stop(ctx)
			}
			return err
		})
	}
	// The gateway's TLS server key is the exception: one found readable may have leaked, so the server
	// replaces it with a new 0600 key and certificate under the same CA (nodes pin the CA, not the key).
	serverKey := filepath.Join(s.srvOpts.DataDir, "tls", tlsca.ServerKeyFile)
	old, err := os.ReadFile(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(serverKey, 0o644); err != nil {
		t.Fatal(err)
	}
	s.startServer()
	if fi, err := os.Stat(serverKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server key after start: %v %v", fi.Mode(), err)
	}
	if now, _ := os.ReadFile(serverKey); bytes.Equal(now, old) {
		t.Fatal("a server key found readable was kept")
	}
	s.startNode()
}

// refusesReadable makes path 0644, checks start refuses with a message naming it and "chmod 600", and
// restores 0600.
func refusesReadable(t *testing.T, path string, start func() error) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("key file: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	err := start()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("start with %s at 0644: %v, want a refusal naming it and chmod 600", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}
