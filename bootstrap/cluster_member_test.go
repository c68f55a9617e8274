package bootstrap

import (
	"slices"
	"testing"
)

func TestClusterOptionsValidate(t *testing.T) {
	good := ClusterOptions{EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "postgres://x@127.0.0.1/db"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]ClusterOptions{
		"no etcd":                {PostgresDSN: "postgres://x@127.0.0.1/db"},
		"no postgres":            {EtcdEndpoints: []string{"127.0.0.1:2379"}},
		"bad remoting address":   {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", Listen: "nocolon"},
		"public cluster gateway": {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", GatewayListen: "0.0.0.0:7602"},
		"named cluster gateway":  {EtcdEndpoints: []string{"127.0.0.1:2379"}, PostgresDSN: "p", GatewayListen: "example.com:7602"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	off := good
	off.GatewayListen = "off"
	if err := off.Validate(); err != nil {
		t.Fatalf("gateway off: %v", err)
	}
	if got := ParseEtcdEndpoints("etcd://a:1, b:2,,"); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("endpoints %v", got)
	}
}
