// Package server is the cloud control plane of one org, assembled for the bootstrap: the gateway nodes
// connect to, the actors (grains), the Badger store, and the operator API and UI. The bootstrap owns the
// listeners and the grpc.Server; this package owns everything behind them.
//
//	node ══gRPC══▶ [bootstrap grpc.Server] ─▶ gateway ─▶ grains (Org, Node, Miner, CommandTracker, FleetView)
//	browser ═HTTP═▶ [bootstrap http.Server] ─▶ Handler(): /api/v1 (api) ─▶ grains; / (ui)
//	                                                        grains ─▶ store (Badger on DataDir, or in memory)
//
// Lifecycle: New (open store, build) → Start (spawn actors, load state) → Stop (goaway to every stream,
// stop actors, close store).
package server
