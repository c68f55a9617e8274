package bootstrap

import (
	"slices"
	"testing"
)

func TestClusterOptionsValidate(t *testing.T) {
	good := ClusterOptions{EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "postgres://x@127.0.0.1/db", KEKFile: "/k", DataDir: "/d"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	// With TLS and node authentication the cluster gateway may listen on any address.
	public := good
	public.GatewayListen = "0.0.0.0:7602"
	if err := public.Validate(); err != nil {
		t.Fatalf("public TLS gateway: %v", err)
	}
	loop := ClusterOptions{EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", InsecureLoopback: true}
	if err := loop.Validate(); err != nil {
		t.Fatalf("insecure loopback test cluster: %v", err)
	}
	for name, o := range map[string]ClusterOptions{
		"no etcd":                   {PostgresDSN: "postgres://x@127.0.0.1/db", KEKFile: "/k", DataDir: "/d"},
		"no postgres":               {EtcdEndpoints: []string{"127.0.0.1:2379"}, KEKFile: "/k", DataDir: "/d"},
		"no KEK":                    {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", DataDir: "/d"},
		"TLS gateway, no data dir":  {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", KEKFile: "/k"},
		"bad remoting address":      {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", KEKFile: "/k", DataDir: "/d", Listen: "nocolon"},
		"bad gateway address":       {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", KEKFile: "/k", DataDir: "/d", GatewayListen: "nocolon"},
		"public plaintext gateway":  {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", InsecureLoopback: true, GatewayListen: "0.0.0.0:7602"},
		"named plaintext gateway":   {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", InsecureLoopback: true, GatewayListen: "example.com:7602"},
		"negative session lifetime": {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", InsecureLoopback: true, SessionTTL: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	off := good
	off.GatewayListen, off.DataDir = "off", ""
	if err := off.Validate(); err != nil {
		t.Fatalf("gateway off: %v", err)
	}
	if got := ParseEtcdEndpoints("etcd://a:1, b:2,,"); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("endpoints %v", got)
	}
}
