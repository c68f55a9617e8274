package cloudcluster_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

func TestConfigValidate(t *testing.T) {
	st := cloudcluster.NewLocal(nil)
	ls := lease.NewMemory()
	good := func() cloudcluster.Config {
		c := cloudcluster.DefaultConfig()
		c.Port, c.EtcdEndpoints, c.Store, c.LeaseStore = 7000, []string{"127.0.0.1:2379"}, st, ls
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range map[string]func(*cloudcluster.Config){
		"no port":            func(c *cloudcluster.Config) { c.Port = 0 },
		"port out of range":  func(c *cloudcluster.Config) { c.Port = 70000 },
		"unknown provider":   func(c *cloudcluster.Config) { c.Provider = "zookeeper" },
		"etcd, no endpoints": func(c *cloudcluster.Config) { c.EtcdEndpoints = nil },
		"etcd, bad endpoint": func(c *cloudcluster.Config) { c.EtcdEndpoints = []string{"etcd-without-port"} },
		"test, no agent":     func(c *cloudcluster.Config) { c.Provider = cloudcluster.ProviderTest },
		"no store":           func(c *cloudcluster.Config) { c.Store = nil },
		"no lease store":     func(c *cloudcluster.Config) { c.LeaseStore = nil },
		"bad cluster name":   func(c *cloudcluster.Config) { c.ClusterName = "a/b" },
		"bad lease timing":   func(c *cloudcluster.Config) { c.Lease.RenewInterval = time.Minute },
		"negative timeout":   func(c *cloudcluster.Config) { c.RequestTimeout = -time.Second },
	} {
		c := good()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, cloudcluster.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
		if _, err := cloudcluster.Start(c); err == nil {
			t.Errorf("%s: Start accepted it", name)
		}
	}
}

// TestSingleMemberOnBadger: the single-member default, with the embedded Badger store and no etcd or
// Postgres: a node connects, commands issued through the member reach it with seqs 1..n, a command id
// issued twice is issued once, and the cluster endpoints refuse bad requests.
func TestSingleMemberOnBadger(t *testing.T) {
	bs, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lease.NewBadger(bs.DB())
	if err != nil {
		t.Fatal(err)
	}
	cfg := cloudcluster.DefaultConfig()
	cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, cloudcluster.NewTestAgent()
	cfg.Port, cfg.Store, cfg.LeaseStore, cfg.Logger = testsvc.FreePort(t), cloudcluster.NewLocal(bs), ls, quiet
	cfg.PairMembers = func(string) ([2]string, error) { return [2]string{"n-a", "n-b"}, nil }
	ms := startMembers(t, 1, func(int) cloudcluster.Config { return cfg })
	t.Cleanup(func() { _ = bs.Close() })
	m := ms[0].m
	n := startNode(t, "solo", func() []string { return []string{ms[0].gwAddr} }, 0)
	n.waitConnected(t, 10*time.Second)
	ctx := context.Background()
	for i, id := range []string{"c1", "c2", "c3", "c2"} {
		r, err := m.Issue(ctx, cloudcluster.Command{NodeID: "solo", CommandID: id})
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(i + 1)
		if id == "c2" {
			want = 2 // issued again: the first command comes back
		}
		if r.GetSeq() != want {
			t.Fatalf("%s: seq %d, want %d", id, r.GetSeq(), want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, refused, _ := n.snapshot()
		if len(ex) == 3 {
			if refused != 0 {
				t.Fatalf("%d commands sent twice", refused)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("executed %d of 3", len(ex))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := m.Issue(ctx, cloudcluster.Command{NodeID: "a/b", CommandID: "x"}); !errors.Is(err, cloudcluster.ErrInvalid) {
		t.Fatalf("bad node id: %v", err)
	}
	if _, err := m.Issue(ctx, cloudcluster.Command{NodeID: "solo", CommandID: ""}); !errors.Is(err, cloudcluster.ErrInvalid) {
		t.Fatalf("empty command id: %v", err)
	}
	st, err := m.NodeStatus(ctx, "solo")
	if err != nil || !st.GetConnected() || st.GetLastSeq() != 3 || st.GetStreamMember() != m.ID() {
		t.Fatalf("status %+v %v", st, err)
	}
	// A lease request through the Lease grain.
	g, err := m.Lease(ctx, &pb.LeaseRequest{PairId: "p1", NodeId: "n-a", Op: pb.LeaseOp_LEASE_OP_ACQUIRE, RequestId: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if gr, ok := g.(*pb.LeaseGrant); !ok || gr.GetEpoch() != 1 || gr.GetHolder() != "n-a" {
		t.Fatalf("lease: %T %v", g, g)
	}

	h := m.Handler("secret-token-0123456789")
	for _, c := range []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"no token", "GET", "/cluster/v1/members", "", "", 401},
		{"wrong token", "GET", "/cluster/v1/members", "Bearer nope", "", 401},
		{"members", "GET", "/cluster/v1/members", "Bearer secret-token-0123456789", "", 200},
		{"malformed body", "POST", "/cluster/v1/nodes/solo/commands", "Bearer secret-token-0123456789", "{not json", 400},
		{"unknown field", "POST", "/cluster/v1/nodes/solo/commands", "Bearer secret-token-0123456789", `{"command_id":"x","evil":1}`, 400},
		{"empty command id", "POST", "/cluster/v1/nodes/solo/commands", "Bearer secret-token-0123456789", `{"command_id":""}`, 400},
		{"huge body", "POST", "/cluster/v1/nodes/solo/commands", "Bearer secret-token-0123456789", `{"command_id":"` + strings.Repeat("x", 2<<20) + `"}`, 400},
		{"issue", "POST", "/cluster/v1/nodes/solo/commands", "Bearer secret-token-0123456789", `{"command_id":"c4","actor":"op"}`, 200},
		{"status", "GET", "/cluster/v1/nodes/solo", "Bearer secret-token-0123456789", "", 200},
	} {
		req := httptest.NewRequest(c.method, c.path, bytes.NewBufferString(c.body))
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: HTTP %d, want %d: %s", c.name, rec.Code, c.want, rec.Body.String())
		}
	}
	if _, err := http.NewRequest("GET", "/", nil); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdClientField: the member can reach (and so close) the etcd client protoactor's provider makes.
func TestEtcdClientField(t *testing.T) {
	if err := cloudcluster.CheckEtcdClientField(); err != nil {
		t.Fatal(err)
	}
}
