// Package proto is the Driver for Proto rigs, which speak the MDK REST API described by
// shared/specs/proto-rig-mdk-openapi.json (the contract; miners/sim/protorig simulates it).
//
// Authentication. With Config.SigningKey set (the node's ed25519 miner-signing key), every request carries a
// short-lived EdDSA JWT the driver signs itself; the rig accepts it once Pair has registered the key through
// /api/v1/pairing/auth-key. With Config.Password set, the driver logs in at /api/v1/auth/login for a bearer
// token, refreshes it on 401 and logs in again when the refresh is refused. With both, the JWT is tried first
// and the password is the fallback (needed for the first pairing of a rig that is already paired to another
// key, which must be authenticated).
//
//	Poll ─▶ GET telemetry?level=miner,hashboard ─▶ GET mining ─▶ GET pools ─▶ GET cooling ─▶ GET errors
//	        (+ GET system, network, hashboards every Config.InfoTTL)              │
//	                                         *pb.Telemetry ◀── normalize (units, states, boards) ◀┘
//
// JWT claims. The contract names the algorithm (EdDSA) and the key format (base64 DER SPKI) but not the
// claims; the driver sends header {"alg":"EdDSA","typ":"JWT"} and claims iss (Config.Issuer), aud (the rig's
// control-board serial, from /api/v1/pairing/info or pb.Device.Serial, so a token is good for one rig only),
// iat, exp (iat + Config.TokenTTL, short) and a random jti. Tokens are reused until half their life is gone.
//
// Commands. REBOOT, START_MINING, STOP_MINING, SET_POWER_TARGET (PUT mining/target), BLINK (POST
// system/locate; params "seconds", "enable"), UPDATE_POOLS (POST pools: 1 to 3 pools, priority order),
// GET_POOLS and GET_ERRORS. The API has no direct curtailment call (the rig's curtailment service takes its
// orders from its own providers), so CURTAIL stops mining, or with CommandSpec.PowerTargetW > 0 lowers the
// power target to it (partial curtailment); UNCURTAIL starts mining again and restores
// CommandSpec.PowerTargetW, or the rig's default target after a partial curtailment by this driver. Poll
// reports CURTAILED when the rig says "Curtailed" or when this driver curtailed it and it has not been
// uncurtailed or started since.
//
// Hostile replies. Bodies are read up to Config.MaxBodyBytes (more is ErrMalformed); every request has a
// deadline (Config.RequestTimeout, or ctx's if earlier) covering the body, so a slow-loris reply is
// ErrUnreachable; content types are not trusted (JSON is parsed whatever the label, HTML is named as such);
// redirects are followed only to the same scheme and host:port; and speaking HTTP to an HTTPS server, or TLS
// to a plain one, is reported as ErrSchemeMismatch with which side speaks what.
package proto
