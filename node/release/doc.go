// Package release signs and verifies node release archives with an ed25519 release key, so that a node is
// installed or upgraded only from a build the operator's release key signed.
//
//	keygen ─▶ release.key (PKCS#8 PEM, mode 0600) + release.pub (PKIX PEM)
//	sign   ─▶ FILE.sig = {"format", "manifest": {artifact, version, sha256, size, key_id}, "signature"}
//	verify ─▶ parse FILE.sig ─▶ key id known? ─▶ ed25519 over the manifest bytes ─▶ size ─▶ sha256 ─▶ version
//
// The signature covers a domain-separation prefix and the manifest's bytes as they stand in the .sig file
// with insignificant whitespace removed (json.Compact), so no other canonicalization is involved: a
// manifest edited in any way beyond whitespace no longer verifies. The key id
// is the first 8 bytes of SHA-256 over the raw public key, in hex; it names which key signed, it is not
// trusted on its own (verification always uses a public key the verifier was given).
//
// Verification reads the artifact once, streaming, and fails with an error wrapping one of the sentinels in
// errors.go (ErrUnsigned, ErrBadSignature, ErrUnknownKey, ErrTampered, ErrVersionMismatch, ErrMalformedSig)
// whose text tells the operator what to do.
package release
