// Package identity owns a fleet node's keys and enrollment state on disk.
//
// At first run Create makes three keypairs, each used in one context only, and LoadOrCreate/Load read them
// back on every later start:
//
//	<dir>/                 0700
//	  identity.key         0600  ed25519, signs session challenges only ("hashfleet-session-v1")
//	  miner-signing.key    0600  ed25519, signs JWTs for Proto rigs only (MinerSigner)
//	  credential.key       0600  X25519, opens HPKE credential envelopes sealed to this node
//	  enrollment.json      0600  node id, org id, server URL, pinned CA PEM, api_key (no private key)
//
// Keys are PEM "PRIVATE KEY" blocks (PKCS #8), readable by standard tools. Every file is written (through
// actors/secretfile) to a temp file in the same directory, fsynced, renamed over the target and the directory
// fsynced, so a crash leaves either the old file or the new one, never a truncated key. Load refuses to run
// when the directory or a file is accessible by group or others, naming the file, its mode and the chmod that
// fixes it.
//
// The identity Fingerprint ("SHA256:xxxx-xxxx-…") is the one defined in messages/signing, so the node prints
// exactly what the cloud shows the operator to confirm.
package identity
