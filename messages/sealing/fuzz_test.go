package sealing_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// FuzzOpen feeds arbitrary bytes to Parse, the JSON decoder and Open: they must never panic, and Open must
// never succeed on anything but the exact golden envelope (the encoding is canonical and authenticated, so
// any other bytes that decode are a different envelope, which must not decrypt).
func FuzzOpen(f *testing.F) {
	raw, err := hex.DecodeString(goldenBinaryHex)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(goldenJSON))
	f.Add(raw[:len(raw)-1])
	f.Add([]byte{1, 0, 0x20, 0, 1, 0, 2})
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 64))

	n := nodeFromKey(f, goldenNode, goldenKey(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		if env, err := sealing.Parse(data); err == nil {
			if again, err := env.MarshalBinary(); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("decoded %x but re-encodes to %x (%v): encoding is not canonical", data, again, err)
			}
			pt, err := n.open(env, env.DeviceID, env.Purpose)
			if err == nil && !bytes.Equal(data, raw) {
				t.Fatalf("opened a non-golden envelope %x to %q", data, pt)
			}
			// Opening with the clear binding as the expected one must still refuse everything else.
			if pt, err := sealing.Open(n.priv, env, env.NodeID, env.DeviceID, env.Purpose); err == nil && !bytes.Equal(data, raw) {
				t.Fatalf("opened a non-golden envelope %x to %q", data, pt)
			}
		}
		var env sealing.Envelope
		if err := json.Unmarshal(data, &env); err == nil {
			if _, err := sealing.Open(n.priv, &env, env.NodeID, env.DeviceID, env.Purpose); err == nil && !env.Equal(mustParse(raw)) {
				t.Fatalf("opened a non-golden JSON envelope %s", data)
			}
		}
	})
}

// FuzzOpenMutated flips bytes of a valid envelope's fields: Open must fail unless nothing changed.
func FuzzOpenMutated(f *testing.F) {
	f.Add(uint8(0), uint16(0), uint8(1))
	f.Add(uint8(1), uint16(31), uint8(0x80))
	f.Add(uint8(2), uint16(5), uint8(0xff))
	raw, err := hex.DecodeString(goldenBinaryHex)
	if err != nil {
		f.Fatal(err)
	}
	golden := mustParse(raw)
	n := nodeFromKey(f, goldenNode, goldenKey(f))
	f.Fuzz(func(t *testing.T, field uint8, idx uint16, x uint8) {
		e := golden.Clone()
		var p []byte
		switch field % 3 {
		case 0:
			p = e.Ciphertext
		case 1:
			p = e.Enc
		case 2:
			p = e.KeyID[:]
		}
		p[int(idx)%len(p)] ^= x
		pt, err := sealing.Open(n.priv, e, goldenNode, goldenDevice, goldenPurpose)
		if (err == nil) != (x == 0) {
			t.Fatalf("field %d idx %d xor %#x: pt %q err %v", field%3, idx, x, pt, err)
		}
	})
}

func mustParse(raw []byte) *sealing.Envelope {
	e, err := sealing.Parse(raw)
	if err != nil {
		panic(err)
	}
	return e
}
