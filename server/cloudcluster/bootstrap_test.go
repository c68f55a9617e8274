package cloudcluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestStartClusterMember: `hashfleet server --cluster-etcd … --postgres …` (bootstrap.StartClusterMember):
// the server's cluster member starts on a real etcd and Postgres, answers its
// /cluster/v1 endpoints behind the admin token, and stops cleanly.
func TestStartClusterMember(t *testing.T) {
	skipUnderRace(t)
	etcd := testsvc.StartEtcd(t)
	pg := testsvc.SharedPostgres(t)
	o := bootstrap.ClusterOptions{EtcdEndpoints: []string{etcd.Endpoint}, PostgresDSN: pg.NewDatabase(t),
		Listen:     fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)),
		HTTPListen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0", InsecureLoopback: true}
	const token = "cluster-member-token-0123456789"
	cm, err := bootstrap.StartClusterMember(context.Background(), o, token, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Stop(context.Background())
	var out bytes.Buffer
	cm.Describe(&out)
	if !strings.Contains(out.String(), cm.HTTPAddr) || cm.GatewayAddr == "" {
		t.Fatalf("describe: %s", out.String())
	}
	do := func(method, path, body, auth string) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://"+cm.HTTPAddr+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	if code, _ := do("GET", "/cluster/v1/members", "", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, m := do("POST", "/cluster/v1/nodes/n1/commands", `{"command_id":"c1"}`, token)
	if code != http.StatusOK || m["seq"] != float64(1) {
		t.Fatalf("issue: %d %v", code, m)
	}
}
