package sealing

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Ownership transfer (ACTION_TRANSFER) on the wire. The cloud's command names the new owner in the spec's
// params and carries the outgoing node's own envelopes in spec.sealed; the outgoing node opens each, seals it
// to the new owner and reports the new envelopes in its result message, after a human-readable summary:
//
//	"<summary>" TransferSealedMarker "<base64 envelope>,<base64 envelope>,..."
//
// Envelopes are ciphertext for the new owner only, so the message may travel and be logged like any result.
const (
	// ParamTransferTo is the new owner's node id.
	ParamTransferTo = "transfer_to"
	// ParamTransferCredentialKey is the new owner's X25519 credential public key, base64 (standard, padded).
	ParamTransferCredentialKey = "transfer_credential_key"
	// ParamTransferSigningKey is the new owner's ed25519 miner-signing public key, base64: a Proto rig is
	// handed over to it. Empty: the device has no such pairing to move.
	ParamTransferSigningKey = "transfer_signing_key"
	// TransferSealedMarker separates a transfer result's summary from its envelopes.
	TransferSealedMarker = "\nsealed:"
	// maxTransferEnvelopes bounds what ParseResealed accepts from one result.
	maxTransferEnvelopes = 64
)

// FormatResealed renders a transfer result: summary, then envs.
func FormatResealed(summary string, envs []*Envelope) (string, error) {
	parts := make([]string, 0, len(envs))
	for _, e := range envs {
		raw, err := e.MarshalBinary()
		if err != nil {
			return "", fmt.Errorf("encode re-sealed envelope: %w", err)
		}
		parts = append(parts, base64.StdEncoding.EncodeToString(raw))
	}
	return summary + TransferSealedMarker + strings.Join(parts, ","), nil
}

// ParseResealed splits a transfer result into its summary and envelopes. A message without the marker has
// no envelopes (ok false); a malformed envelope list is an error.
func ParseResealed(msg string) (summary string, envs []*Envelope, ok bool, err error) {
	summary, list, ok := strings.Cut(msg, TransferSealedMarker)
	if !ok {
		return msg, nil, false, nil
	}
	if list == "" {
		return summary, nil, true, nil
	}
	items := strings.Split(list, ",")
	if len(items) > maxTransferEnvelopes {
		return summary, nil, true, fmt.Errorf("transfer result lists %d envelopes, at most %d: %w", len(items), maxTransferEnvelopes, ErrMalformedEnvelope)
	}
	for i, it := range items {
		raw, err := base64.StdEncoding.DecodeString(it)
		if err != nil {
			return summary, nil, true, fmt.Errorf("transfer result envelope %d: %w: %v", i, ErrMalformedEnvelope, err)
		}
		e, err := Parse(raw)
		if err != nil {
			return summary, nil, true, fmt.Errorf("transfer result envelope %d: %w", i, err)
		}
		envs = append(envs, e)
	}
	return summary, envs, true, nil
}
