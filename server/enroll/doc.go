// Package enroll decides who is a node: one-time enrollment codes, api keys, session challenges and
// session tokens. It is pure apart from small storage interfaces (CodeStore, ChallengeStore, SecretStore,
// with in-memory twins): time is passed in, randomness comes from crypto/rand, and nothing secret is stored
// in the clear.
//
//	operator: Mint(org, site, ttl) ──▶ code "XXXXXX-XXXXXX-XXXXXX-XXXXXX" (store keeps only HMAC(code))
//	node:     EnrollRequest{code, keys} ──▶ Redeem(code, identityPub)     first use binds the code to the key;
//	                                                                    the same node may re-present it to poll
//	operator: confirms the fingerprint  ──▶ NewAPIKey() → key to the node once, SHA-256(key) to NodeRecord
//	                                        FinishCode: the code is dead
//	node:     Challenge{node_id}         ──▶ NewChallenge: 32-byte nonce, short expiry, single use
//	node:     OpenSession{api_key, nonce, sig over signing.ChallengeBytes(node_id, nonce)}
//	                                     ──▶ OpenSession: api_key (constant time) AND identity signature
//	                                        ──▶ MintSession: HMAC-SHA256 token binding node id + expiry
//	every RPC: authorization: Bearer <token> ──▶ VerifySession(token, now) → node id
//
// The server secret that keys the code HMAC and the session tokens is created once and persisted through a
// SecretStore shared by every member, so tokens survive restarts and verify on any member.
package enroll
