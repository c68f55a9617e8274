// Package server is the cloud control plane of one org, assembled for the bootstrap: the gateway nodes
// connect to, the actors (grains), the Badger store, and the operator API and UI. The bootstrap owns the
// listeners and the grpc.Server; this package owns everything behind them.
//
//	node ══gRPC══▶ [bootstrap grpc.Server] ─▶ gateway ─▶ grains (Org, Node, Miner, CommandTracker, FleetView)
//	browser ═HTTP═▶ [bootstrap http.Server] ─▶ Handler(): /api/v1 (api) ─▶ grains; / (ui)
//	                                                        grains ─▶ store (Badger on DataDir, or in memory)
//
// Split mode (Config.Combined false) adds the node registry (server/registry: enrollment, confirmation,
// sessions) behind the gateway's Enroll/Challenge/OpenSession and its session authenticator; both modes sign
// every command with the org's command keys (server/keys, 0600 files in KeysDir), whose rotation and
// revocation reach every node as signed key commands.
//
// Lifecycle: New (open store, build) → Start (spawn actors, load state) → Stop (goaway to every stream,
// stop actors, close store).
package server
