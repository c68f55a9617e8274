// Package credentials is the node's side of the credential envelopes: it opens, just in time for one
// command, the pool or miner password the cloud sealed to this node (messages/sealing), and re-seals or
// seals anew for the cloud's transfer and rotation workflows (server/credentials). It never writes
// anything: it has no file, store or network I/O, so a plaintext can only live in the memory of the call
// that asked for it.
//
//	MinerActor / command handler                      Opener (this node's id, credential key, ownership map)
//	  env (ciphertext, from the cloud or a cache) ──▶ Use(env, device, purpose, fn)
//	                                                    │ device owned by this node? (ErrNotOwner)
//	                                                    │ sealing.Open: this node's key, expected binding
//	                                                    ▼
//	                                                  fn(secret) ── e.g. digest-auth login, set pool ──▶ miner
//	                                                    │
//	                                                    └─ Wipe(secret) when fn returns, whatever it returned
//
//	transfer:  Reseal(own env, device, purpose, new owner id, new owner key) ──▶ envelope for the new owner
//	rotation:  SealRotation(device, purpose, new secret, owners)            ──▶ one envelope per owner
//
// Prefer Use: it wipes the plaintext even when fn fails or panics. Open returns a slice the caller must
// Wipe itself (defer Wipe(secret) right after the error check). Do not convert a secret to a string
// (strings cannot be wiped), log it, or keep it past the command. The limits of wiping in Go are in
// messages/sealing's package doc.
package credentials
