// Package signing owns the bytes that hashfleet signs and the keys that sign them.
//
// Three things live here, each with one definition that both halves of hashfleet share:
//
//   - command signing: CanonicalBytes is the unambiguous, length-prefixed encoding of a ControlCommand
//     ("hashfleet-command-v1", actor, node_id, monotonic_seq, key_id, lease_epoch, idempotency_key, payload);
//     Sign and Verify apply ed25519 to it. Protobuf serialization is never signed, because it is not
//     deterministic across implementations and versions.
//   - the node's trust store (Keyring) of its org's command-issuance public keys, and the cloud's issuer
//     side (OrgKeys) that generates, rotates, retires and revokes them;
//   - the session challenge bytes (ChallengeBytes, context "hashfleet-session-v1") the node signs with its
//     identity key and the cloud verifies, and the identity Fingerprint an operator compares at enrollment.
//
// Key rotation is a protocol carried in signed commands:
//
//	cloud (OrgKeys)                                  node (Keyring)
//	Rotate(now, overlap) ── new key K2, K1 retires at now+overlap
//	  payload{KeyAnnouncement{K2, retire K1 at T}}
//	  SignWith(K1, cmd) ───── ControlCommand ──────▶ ApplyAnnouncement(cmd, ann, now)
//	                                                   cmd verifies with trusted K1 (same org)
//	                                                   K2 has a validity start → trusted from valid_from
//	                                                   K1 refused from T on (ErrKeyRetired)
//	Sign(cmd) with K2 ────── ControlCommand ───────▶ Verify(cmd, now) with K2
//	Revoke(K1) → payload{KeyRevocation{K1}}
//	  Sign(cmd) with K2 ──── ControlCommand ───────▶ ApplyRevocation: K1 refused forever,
//	                                                   even if announced again
//
// Key ids are namespaced by org: "<org_id>/k_<16 hex>". A command whose key id names another org is refused
// with ErrWrongOrg before any key lookup, so one org's key can never authorise a command for another org's
// node, even if the random parts collide.
//
// Keyring and OrgKeys are values with time passed in: they read no clock and do no I/O. The node persists
// Keyring.Snapshot and restores it with NewKeyring; the cloud persists OrgKeys.Export and restores it with
// ImportOrgKeys. Both are safe for concurrent use, but are meant to be owned by one actor.
package signing
