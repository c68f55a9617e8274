// Package registry decides which nodes the cloud talks to: it runs enrollment (one-time code → pending node
// → operator confirms the identity fingerprint → api_key issued once), session opening (api_key AND a
// challenge signed by the identity key → short-lived token) and session checks on every stream, on top of
// the pure rules in server/enroll and the node records in server/store.
//
//	operator ─POST /enrollment-codes──▶ MintCode ─▶ enroll.Mint (store keeps HMAC(code))
//	node ─Enroll{code, public keys}───▶ Enroll: Redeem → NodeRecord{pending, fingerprint}  (node polls)
//	operator ─POST /nodes/{id}/confirm{fingerprint}─▶ Confirm: must equal the record's, exactly
//	node ─Enroll (poll)───────────────▶ confirmed: api_key minted, only its hash stored, code finished
//	node ─Challenge / OpenSession─────▶ OpenSession: record confirmed, not revoked; api_key + signature
//	every stream ─Bearer token────────▶ VerifySession: MAC, expiry, record confirmed and not revoked
//
// Node ids are derived from the identity key ("n" + 16 hex digits of its SHA-256), so a node polling with
// the same key always lands on the same record. Every refusal at this boundary is written to the security
// event log (rate-limited, so a flood of garbage cannot turn into a flood of writes) and logged.
package registry
