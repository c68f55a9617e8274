// Package protorig simulates a fleet of Proto rigs speaking the MDK REST API
// (shared/specs/proto-rig-mdk-openapi.json) over real sockets: each rig is its own net/http server on its own
// loopback address, with its own password, pairing key, state and write log.
//
//	Start(Config) ─▶ Fleet ─┬─ Miner "proto-0000" ── http.Server on 127.20.0.1:p ─┐
//	                        ├─ Miner "proto-0001" ── http.Server on 127.20.0.2:p ─┤  faults ▶ auth ▶ route
//	                        └─ ...                                                 ┘        │
//	                                                   state (pools, mining, target, ...) ◀──┘ + write log
//
// Authentication follows the contract: POST /api/v1/auth/login with the rig's password returns an HS256
// access/refresh pair; POST /api/v1/pairing/auth-key registers an ed25519 public key (base64 DER SPKI; open on
// first pairing, authenticated on rotation), after which EdDSA JWTs signed by that key are accepted. The
// contract does not spell out the JWT claims; the simulator requires header {"alg":"EdDSA","typ":"JWT"} and
// claims iat and exp (exp-iat at most Config.JWTMaxTTL, checked against the injected clock with
// Config.JWTLeeway), and aud equal to the rig's control-board serial (cb_sn from /api/v1/pairing/info), so a
// token minted for one rig is useless on another.
//
// Business time (uptime, token expiry, reboot duration, locate duration) runs on Config.Clock; network
// behaviour (timeouts, the slow-reply fault) runs on the wall clock, as sockets do.
//
// Mining state follows the contract's status values: "Mining", "Stopped", "Curtailed" (set from outside with
// Miner.SetCurtailment, as the rig's curtailment service would) and "NoPools". Hashrate scales linearly with
// the power target between the rig's minimum and default target; see State.
//
// Every write (any non-GET request other than login/refresh) is appended to the rig's write log with the
// injected clock's time, the caller's address and whether it was accepted; pool passwords are redacted.
package protorig
