// Package messages holds the .proto files of hashfleet and, in pb/, their generated Go.
//
// Regenerate with `go generate ./messages` (needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH;
// see Taskfile.yml target `proto`).
package messages

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/hashfleet/hashfleet/messages --go-grpc_out=. --go-grpc_opt=module=github.com/hashfleet/hashfleet/messages hashfleet/v1/common.proto hashfleet/v1/gateway.proto hashfleet/v1/store.proto hashfleet/v1/cluster.proto hashfleet/v1/cluster_org.proto hashfleet/v1/cluster_auth.proto
