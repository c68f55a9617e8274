// Package credentials is the cloud's credential vault: pool and miner passwords sealed per node (HPKE,
// messages/sealing) to each node that owns the device, so a compromised node reads only its own devices'
// credentials and the cloud never holds a plaintext at rest. It owns the workflows that change who can read
// a credential: ownership transfer (re-sealed by the outgoing node, since the cloud cannot decrypt) and node
// revocation (every credential the node could read becomes revocation-pending until a trusted node rotates
// it).
//
//	operator ──Put(org, device, purpose, plaintext, owners)──▶ Vault ──SealAll──▶ envelope per owner
//	   (plaintext only in memory, for the seal)                  │
//	                                                             ▼  Store (ciphertext + state only)
//	node ◀──Envelopes(node) / Envelope(node, device, purpose)─── cred/dev/<device>  DeviceRecord
//	                                                             cred/idx/<node>/<device>
//	Transfer(device, from, to) ──ResealRequest──▶ outgoing node: open own, seal to new owners
//	CompleteTransfer(device, by, envs) ◀───────────────────────┘  old envelopes deleted only now
//	RevokeNode(node) ──▶ its envelopes deleted, readable credentials revocation-pending
//	CompleteRotation(device, purpose, by, envs) ◀── trusted node set a new secret on the miner, sealed it
//
// Decisions are pure functions of (stored record, request, revoked set, now) in decide.go, tested by
// tables; Vault only reads, decides and writes, one Store transaction per device step. Store has an
// in-memory twin (MemStore) and a Badger implementation (BadgerStore, keys under "cred/", values JSON).
//
// What a credential's state means:
//
//   - active: every reader of the current generation is trusted.
//   - revocation-pending: a revoked node could read the current generation (as an owner, a holder, or a
//     former owner before a transfer: Readers tracks them all). A Put stages a new secret
//     (NewSecretStaged) but does not clear it; only a trusted owner's CompleteRotation does, because only
//     the node knows the miner has the new secret.
//   - a device is transfer-pending while its outgoing node has not uploaded the re-sealed envelopes; its
//     credentials keep their own state across it.
//
// Limits. The vault cannot check that a node's re-sealed or rotated envelope holds the right secret (it
// cannot decrypt): the uploading node is trusted for that, which is why only a non-revoked owner may upload.
// Envelopes carry no generation, so a node cannot tell an older envelope from the current one; the gateway
// should serve envelopes only from this vault, over the authenticated stream.
package credentials
