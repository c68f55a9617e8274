package sealing_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// Known answer: an envelope sealed once by this package (version 1) to a fixed key. It must keep opening,
// byte for byte, in every later build: the stored envelopes in every vault depend on it.
const (
	goldenBinaryHex = "01002000010002000b6e6f64652d676f6c64656e000a6d696e65722d30303031000f706f6f6c2d70617373776f72642f30" +
		"42bf88617fb862e20020a7b7141bf07119a1bf38ca5329b05386e9a37b90c77d1814e0dd60125aac3c410000002c8cd47bb463" +
		"dfbbe315755739f03f470feb096da190998eff7e99316950949d10dc21c38aa08c7c0980b49f6f"
	goldenJSON = `{"v":1,"kem":32,"kdf":1,"aead":2,"node_id":"node-golden","device_id":"miner-0001",` +
		`"purpose":"pool-password/0","key_id":"42bf88617fb862e2","enc":"p7cUG/BxGaG/OMpTKbBThumje5DHfRgU4N1gElqsPEE=",` +
		`"ct":"jNR7tGPfu+MVdVc58D9HD+sJbaGQmY7/fpkxaVCUnRDcIcOKoIx8CYC0n28="}`
	goldenPlaintext = "hunter2-golden-pool-password"
	goldenNode      = "node-golden"
	goldenDevice    = "miner-0001"
	goldenPurpose   = "pool-password/0"
)

// goldenKey is the fixed X25519 private key 0x01 0x02 ... 0x20.
func goldenKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	k, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGoldenEnvelopeOpens(t *testing.T) {
	n := nodeFromKey(t, goldenNode, goldenKey(t))
	raw, err := hex.DecodeString(goldenBinaryHex)
	if err != nil {
		t.Fatal(err)
	}
	env, err := sealing.Parse(raw)
	if err != nil {
		t.Fatalf("Parse golden: %v", err)
	}
	pt, err := n.open(env, goldenDevice, goldenPurpose)
	if err != nil {
		t.Fatalf("Open golden: %v", err)
	}
	if string(pt) != goldenPlaintext {
		t.Fatalf("golden opened to %q", pt)
	}
	// The encodings are stable: re-encoding gives the same bytes, and the JSON form is the same envelope.
	again, err := env.MarshalBinary()
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("re-encoding the golden envelope changed it: %v", err)
	}
	js, err := json.Marshal(env)
	if err != nil || string(js) != goldenJSON {
		t.Fatalf("golden JSON:\n got %s\nwant %s", js, goldenJSON)
	}
	var fromJSON sealing.Envelope
	if err := json.Unmarshal([]byte(goldenJSON), &fromJSON); err != nil || !fromJSON.Equal(env) {
		t.Fatalf("golden JSON decode: %v", err)
	}
	// An independent RFC 9180 implementation agrees.
	pt2, err := rfc9180Open(goldenKey(t), env)
	if err != nil || string(pt2) != goldenPlaintext {
		t.Fatalf("independent open of golden: %q, %v", pt2, err)
	}
}

// TestIndependentRFC9180 opens fresh envelopes with a from-the-RFC implementation of base-mode HPKE with
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM, and the documented info: it proves the suite,
// mode and info binding are what the package doc says, not just that Seal and Open agree with each other.
func TestIndependentRFC9180(t *testing.T) {
	a := newNode(t, "node-a")
	for _, pt := range [][]byte{[]byte("x"), secret, bytes.Repeat([]byte("long"), 1000)} {
		env := a.seal(t, "dev/with/slashes", sealing.PoolPassword(1), pt)
		got, err := rfc9180Open(a.ecdh, env)
		if err != nil {
			t.Fatalf("independent open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("independent open: %q", got)
		}
	}
}

// rfc9180Open is RFC 9180 §4.1 (DHKEM Decap), §5.1 (KeySchedule, mode_base) and §5.2 (Open, seq 0),
// written from the RFC with crypto/hkdf and crypto/aes only.
func rfc9180Open(skR *ecdh.PrivateKey, env *sealing.Envelope) ([]byte, error) {
	i2osp2 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	labeledExtract := func(suiteID, salt []byte, label string, ikm []byte) []byte {
		prk, err := hkdf.Extract(sha256.New, cat([]byte("HPKE-v1"), suiteID, []byte(label), ikm), salt)
		if err != nil {
			panic(err)
		}
		return prk
	}
	labeledExpand := func(suiteID, prk []byte, label string, info []byte, l int) []byte {
		out, err := hkdf.Expand(sha256.New, prk, string(cat(i2osp2(uint16(l)), []byte("HPKE-v1"), suiteID, []byte(label), info)), l)
		if err != nil {
			panic(err)
		}
		return out
	}

	// DHKEM(X25519, HKDF-SHA256) Decap.
	kemSuite := cat([]byte("KEM"), i2osp2(0x0020))
	pkE, err := ecdh.X25519().NewPublicKey(env.Enc)
	if err != nil {
		return nil, err
	}
	dh, err := skR.ECDH(pkE)
	if err != nil {
		return nil, err
	}
	kemContext := cat(env.Enc, skR.PublicKey().Bytes())
	eaePRK := labeledExtract(kemSuite, nil, "eae_prk", dh)
	sharedSecret := labeledExpand(kemSuite, eaePRK, "shared_secret", kemContext, 32)

	// KeySchedule, mode_base (0x00), default psk and psk_id.
	hpkeSuite := cat([]byte("HPKE"), i2osp2(0x0020), i2osp2(0x0001), i2osp2(0x0002))
	info := sealing.Info(env.NodeID, env.DeviceID, env.Purpose)
	pskIDHash := labeledExtract(hpkeSuite, nil, "psk_id_hash", nil)
	infoHash := labeledExtract(hpkeSuite, nil, "info_hash", info)
	ksContext := cat([]byte{0x00}, pskIDHash, infoHash)
	secretPRK := labeledExtract(hpkeSuite, sharedSecret, "secret", nil)
	key := labeledExpand(hpkeSuite, secretPRK, "key", ksContext, 32)
	baseNonce := labeledExpand(hpkeSuite, secretPRK, "base_nonce", ksContext, 12)

	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return gcm.Open(nil, baseNonce, env.Ciphertext, nil) // seq 0: nonce = base_nonce XOR 0
}
