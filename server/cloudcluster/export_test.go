package cloudcluster

import (
	"github.com/asynkron/protoactor-go/cluster"
	etcdprovider "github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CheckEtcdClientField makes a provider (no connection is made until use) and reads its client.
func CheckEtcdClientField() error {
	p, err := etcdprovider.NewWithConfig("/x", clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, Logger: quietZap()})
	if err != nil {
		return err
	}
	c, err := etcdClient(p)
	if err != nil {
		return err
	}
	return c.Close()
}

// Cluster exposes the member's protoactor cluster to the package's tests.
func (m *Member) Cluster() *cluster.Cluster { return m.c }
