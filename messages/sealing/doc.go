// Package sealing owns the credential envelope: the wire format and the pure crypto that seals a pool or
// miner credential to one node's X25519 credential key, so that only that node can read it. Both halves use
// it: the cloud vault (server/credentials) seals operator-entered secrets and stores only envelopes; the node
// (node/credentials) opens them just in time for a command and re-seals them for a transfer.
//
// Crypto: HPKE (RFC 9180, Go's crypto/hpke), base mode, suite
// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (ids 0x0020 / 0x0001 / 0x0002), one message per
// context, no AAD. The HPKE info binds the envelope to its recipient node, device and purpose:
//
//	info = field("hashfleet-credential-v1") || field(node_id) || field(device_id) || field(purpose)
//	field(x) = u64be(len(x)) || x                  (the same prefix-free encoding as messages/signing)
//
// so an envelope sealed for (node A, device D, purpose P) opens only with A's private key AND the expected
// (A, D, P): moving it to another device or purpose, or presenting node B's envelope to node A, fails. The
// binding is also carried in clear in the envelope (for routing and storage), and Open compares it before
// decrypting, but the decision rests on the HPKE info built from the caller's expected values, never on the
// clear copy. DHKEM puts the recipient public key and the encapsulated key into the KEM context, so neither
// can be swapped either.
//
//	cloud (server/credentials)                       node (node/credentials)
//	operator plaintext ─▶ Seal(pkA, A, D, P) ─▶ Envelope ──(stored, shipped)──▶ Open(skA, env, A, D, P)
//	                  └─▶ Seal(pkA', A', D, P)  (each owner: both nodes of a pair)  └─▶ plaintext, Wipe after use
//
// Envelope encoding (MarshalBinary, version 1; all integers big-endian; decoding is strict and canonical:
// one envelope has exactly one encoding, trailing bytes are refused):
//
//	u8  version (1)
//	u16 kem id (0x0020) | u16 kdf id (0x0001) | u16 aead id (0x0002)
//	u16 len | node_id   | u16 len | device_id | u16 len | purpose
//	[8] key id: SHA-256("hashfleet-credential-key-v1" || recipient public key)[:8]
//	u16 len | enc (32 bytes for X25519)
//	u32 len | ciphertext (AES-256-GCM output, plaintext + 16-byte tag)
//
// The JSON form (MarshalJSON) carries the same fields: {"v","kem","kdf","aead","node_id","device_id",
// "purpose","key_id" (hex),"enc" (base64),"ct" (base64)}.
//
// Memory hygiene, and its limits in Go: Seal reads the caller's plaintext and makes no copy of it; Open
// returns the only copy it makes, which the caller must Wipe when done. Wipe zeroes a slice in place. That is
// all Go lets a library promise: strings cannot be wiped (never hold a secret in one: take []byte from the
// JSON or form decoder), the garbage collector and stack growth may leave earlier copies in freed memory,
// crypto/hpke and crypto/aes keep their derived keys in heap objects they never zero, and nothing here stops
// swap or core dumps. Built with GOEXPERIMENT=runtimesecret on linux/amd64 or arm64, Seal and Open run their
// HPKE work inside runtime/secret.Do, so the registers and stack they used are erased on return and their
// heap allocations (the key schedule, the shared secret) once the collector finds them unreachable.
//
// Rollback is out of this package's scope: an envelope carries no generation, so a party that stores
// envelopes (the cloud) could hand a node an older envelope for the same (node, device, purpose). The vault
// tracks generations; see server/credentials.
package sealing
