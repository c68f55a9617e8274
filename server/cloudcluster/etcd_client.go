package cloudcluster

import (
	"errors"
	"reflect"
	"unsafe"

	etcdprovider "github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdClient returns the etcd client protoactor's etcd provider made for itself. The provider (pinned
// version) never closes it, so a member that stops would leave the client's gRPC connection and lease
// goroutines running in the process; Member.Stop closes it after the provider deregistered. The field is
// unexported, hence reflection; TestEtcdClientField pins it, and a provider without the field is reported
// as an error instead of crashing.
func etcdClient(p *etcdprovider.Provider) (*clientv3.Client, error) {
	v := reflect.ValueOf(p)
	if v.IsNil() {
		return nil, errors.New("no etcd provider")
	}
	f := v.Elem().FieldByName("client")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*clientv3.Client)(nil)) {
		return nil, errors.New("protoactor etcd provider has no client field of type *clientv3.Client")
	}
	return *(**clientv3.Client)(unsafe.Pointer(f.UnsafeAddr())), nil
}
