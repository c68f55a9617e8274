// Package bootstrap wires each mode of the hashfleet binary with go.uber.org/fx: configuration, the order
// things start and stop in, and the listeners each mode owns. Every mode is built from the same pieces
// (wiring.go: actor runtime, serverConfig/startServer, nodeConfig/startNode, serveGateway, serveHTTP), so a
// server or node is configured one way whichever process it runs in.
//
//	demo      = combined + minersim fleet
//	combined  = server (API/UI, gateway on an in-process listener) + node (dials that listener); commands
//	            are signed with the org's keys and verified by the node's keyring, as in split mode
//	server    = split mode's cloud: API/UI + gateway on TCP with TLS from the server's own CA (split_server.go)
//	node      = enroll (keys, code, fingerprint confirmed by the operator, api_key, pinned CA), run (TLS to
//	            the pinned CA, session from api_key + identity signature), status (split_node.go,
//	            node_status.go), backup/restore (backup.go); a running node serves read-only store
//	            views on a loopback admin endpoint (node_admin.go)
//	store     = inspect: read-only views of a Badger store, or of a running node's via its admin
//	            endpoint (inspect.go)
//	             ┌──────────── process ─────────────┐
//	 browser ──▶ │ HTTP API/UI ─▶ server actors      │
//	             │                 ▲ gRPC (bufconn)  │
//	             │ node actors ────┘ ──TCP──▶ miners │
//	             └───────────────────────────────────┘
package bootstrap
