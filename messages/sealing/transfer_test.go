package sealing_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// TestResealedFormat: a transfer result round-trips its envelopes; a message without the marker carries
// none; malformed lists (bad base64, truncated or foreign bytes, too many) are refused.
func TestResealedFormat(t *testing.T) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sealing.Seal(k.PublicKey(), "n2", "m1", sealing.PoolPassword(0), []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sealing.FormatResealed("re-sealed 2", []*sealing.Envelope{e, e})
	if err != nil {
		t.Fatal(err)
	}
	sum, envs, ok, err := sealing.ParseResealed(msg)
	if err != nil || !ok || sum != "re-sealed 2" || len(envs) != 2 || !envs[0].Equal(e) {
		t.Fatalf("round trip: %q %d %v %v", sum, len(envs), ok, err)
	}
	if sum, envs, ok, err := sealing.ParseResealed("rebooted"); err != nil || ok || sum != "rebooted" || envs != nil {
		t.Fatalf("plain message: %q %v %v %v", sum, envs, ok, err)
	}
	if _, envs, ok, err := sealing.ParseResealed("none" + sealing.TransferSealedMarker); err != nil || !ok || len(envs) != 0 {
		t.Fatalf("empty list: %v %v %v", envs, ok, err)
	}
	raw, _ := e.MarshalBinary()
	for name, list := range map[string]string{
		"bad base64": "%%%",
		"truncated":  base64.StdEncoding.EncodeToString(raw[:len(raw)/2]),
		"foreign":    base64.StdEncoding.EncodeToString([]byte("not an envelope at all")),
		"empty item": base64.StdEncoding.EncodeToString(raw) + ",",
		"too many":   strings.Repeat(base64.StdEncoding.EncodeToString(raw)+",", 64) + base64.StdEncoding.EncodeToString(raw),
	} {
		if _, _, _, err := sealing.ParseResealed("x" + sealing.TransferSealedMarker + list); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "too many" && !errors.Is(err, sealing.ErrMalformedEnvelope) && !errors.Is(err, sealing.ErrUnsupportedVersion) {
			t.Logf("%s: %v", name, err)
		}
	}
}
