// Package bootstrap wires each mode of the hashfleet binary with go.uber.org/fx: configuration, the order
// things start and stop in, and the listeners each mode owns.
//
//	demo      = combined + minersim fleet
//	combined  = server (API/UI, gateway on an in-process listener) + node (dials that listener)
//	             ┌──────────── process ─────────────┐
//	 browser ──▶ │ HTTP API/UI ─▶ server actors      │
//	             │                 ▲ gRPC (bufconn)  │
//	             │ node actors ────┘ ──TCP──▶ miners │
//	             └───────────────────────────────────┘
package bootstrap
