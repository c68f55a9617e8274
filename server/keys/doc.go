// Package keys keeps the cloud's per-org command-issuance keys (messages/signing.OrgKeys) on disk and
// applies their lifecycle: rotate (a new key, the current one retiring after an overlap), revoke, list.
//
//	<data>/keys/            0700
//	  commands-<org>.json   0600  every key of the org: public record + ed25519 seed, written fsync+rename
//
// The private seeds live in their own 0600 file, not in the Badger store: Badger's value log keeps
// overwritten values until garbage collection, and a store dump (hashfleet store inspect) must never show a
// signing key. A rotation or revocation is written to disk before it is used; if the write fails, the
// in-memory keys are restored from the last good file, so a signature is never made with a key that was not
// persisted. An empty Dir keeps the keys in memory (tests, the in-memory demo).
//
// The Org actor (server/grains) calls Rotate and Revoke and delivers the resulting signed key commands to
// every node; grains.OrgKeysSigner signs commands with OrgKeys().
package keys
