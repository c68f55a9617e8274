package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/localui"
)

// startCurtailLocalUI starts the node's local UI over s's site with a local admin "admin" /
// "Quartz-Lantern-Meadow-91", stopped when the test ends. It returns an HTTPS client that trusts the UI's
// certificate and keeps its cookies, and the UI's base URL.
func startCurtailLocalUI(t *testing.T, s *automationSite) (*http.Client, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "localui")
	if err := localui.SetLocalAdmin(dir, "admin", "Quartz-Lantern-Meadow-91"); err != nil {
		t.Fatal(err)
	}
	cfg := localui.DefaultConfig(dir)
	cfg.Addr, cfg.NodeID = "127.0.0.1:0", "n1"
	srv, err := localui.New(cfg, localui.Env{Site: s.node.LocalSite(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate().Leaf)
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second}, "https://" + srv.Addr().String()
}
