package signing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Signing contexts. Each key signs in exactly one of them; the context is the first field of the signed
// bytes, so bytes signed in one context can never be taken for the other.
const (
	// CommandContext prefixes every signed ControlCommand.
	CommandContext = "hashfleet-command-v1"
	// SessionContext prefixes every session challenge signed by a node's identity key.
	SessionContext = "hashfleet-session-v1"
)

// encoder writes fields as an 8-byte big-endian length followed by the bytes. A fixed sequence of
// length-prefixed fields is prefix-free, so two different field tuples never encode to the same bytes
// (("ab","c") and ("a","bc") differ).
type encoder struct{ b []byte }

func (e *encoder) bytes(p []byte) {
	e.b = binary.BigEndian.AppendUint64(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) str(s string) {
	e.b = binary.BigEndian.AppendUint64(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) u64(v uint64) {
	e.b = binary.BigEndian.AppendUint64(e.b, 8)
	e.b = binary.BigEndian.AppendUint64(e.b, v)
}

// CanonicalBytes returns the bytes a command signature covers:
//
//	field("hashfleet-command-v1") || field(actor) || field(node_id) || field(u64be(monotonic_seq)) ||
//	field(key_id) || field(u64be(lease_epoch)) || field(idempotency_key) || field(payload)
//
// followed, only when local_watermark is set, by
//
//	field("local_watermark") || field(u64be(wall_ms)) || field(u64be(logical)) || field(node_id)
//
// where field(x) = u64be(len(x)) || x. command_id, issued_at_unix_ms and the signature itself are not
// covered: nothing may decide security on them. A nil command encodes as the zero command.
func CanonicalBytes(cmd *pb.ControlCommand) []byte {
	e := encoder{b: make([]byte, 0, 8*8+16+len(CommandContext)+len(cmd.GetActor())+len(cmd.GetNodeId())+
		len(cmd.GetKeyId())+len(cmd.GetIdempotencyKey())+len(cmd.GetPayload()))}
	e.str(CommandContext)
	e.str(cmd.GetActor())
	e.str(cmd.GetNodeId())
	e.u64(cmd.GetMonotonicSeq())
	e.str(cmd.GetKeyId())
	e.u64(cmd.GetLeaseEpoch())
	e.str(cmd.GetIdempotencyKey())
	e.bytes(cmd.GetPayload())
	if w := cmd.GetLocalWatermark(); w != nil {
		e.str(watermarkTag)
		e.u64(uint64(w.GetWallMs()))
		e.u64(uint64(w.GetLogical()))
		e.str(w.GetNodeId())
	}
	return e.b
}

// watermarkTag opens the optional trailing local-watermark fields. A command without a watermark encodes
// exactly as before they existed, so signatures made before stay valid; one with a watermark encodes longer,
// so neither can be taken for the other.
const watermarkTag = "local_watermark"

// ChallengeBytes returns the bytes a node's identity key signs to open a session, and the cloud verifies:
//
//	field("hashfleet-session-v1") || field(node_id) || field(nonce)
//
// with the same length-prefixed fields as CanonicalBytes. The identity key signs nothing else.
func ChallengeBytes(nodeID string, nonce []byte) []byte {
	e := encoder{b: make([]byte, 0, 24+len(SessionContext)+len(nodeID)+len(nonce))}
	e.str(SessionContext)
	e.str(nodeID)
	e.bytes(nonce)
	return e.b
}

// MinerKeyContext separates a node's miner-signing key announcement from every other signature.
const MinerKeyContext = "hashfleet-miner-key-v1"

// MinerKeyBytes returns the bytes a node's identity key signs to announce its current miner-signing key
// (ControlHello.miner_signing_public_key), and the cloud verifies:
//
//	field("hashfleet-miner-key-v1") || field(node_id) || field(key)
func MinerKeyBytes(nodeID string, key []byte) []byte {
	e := encoder{b: make([]byte, 0, 24+len(MinerKeyContext)+len(nodeID)+len(key))}
	e.str(MinerKeyContext)
	e.str(nodeID)
	e.bytes(key)
	return e.b
}

// fingerprintBytes is how much of the SHA-256 digest a fingerprint shows: 128 bits, far beyond what a
// second-preimage search can reach, in 8 groups an operator can read aloud.
const fingerprintBytes = 16

// Fingerprint returns the identity fingerprint an operator compares at enrollment: "SHA256:" followed by the
// first 128 bits of SHA-256(public key) in lowercase hex, in groups of four separated by dashes, e.g.
// "SHA256:3f2a-91c0-5be7-0d44-a1e9-7c3b-62f0-8d15". The node prints it, the cloud computes the same from the
// public key in the EnrollRequest.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:fingerprintBytes])
	var b strings.Builder
	b.Grow(len("SHA256:") + len(h) + len(h)/4)
	b.WriteString("SHA256:")
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(h[i : i+4])
	}
	return b.String()
}
