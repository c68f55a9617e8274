// Package bospb is the generated Go of bos_subset.proto, the subset of the Braiins OS public gRPC API
// (braiins.bos.v1) that hashfleet's Braiins driver and simulator speak. Regenerate with `go generate` in
// this directory (needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package bospb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative bos_subset.proto
