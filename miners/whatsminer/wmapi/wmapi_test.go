package wmapi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

// Known answers from `openssl passwd -1 -salt SALT PASSWORD`.
func TestMD5CryptKnownAnswers(t *testing.T) {
	cases := []struct{ pw, salt, want string }{
		{"admin", "BQ5hoXV9", "$1$BQ5hoXV9$RxmaDUO33TS7O26yeMHZ81"},
		{"password", "saltsalt", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"},
		{"x", "", "$1$$LP5.V3ajGqHDdXW6XwZQy."},
		{"password", "$1$saltsalt$ignored", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"},
	}
	for _, c := range cases {
		if got := MD5Crypt(c.pw, c.salt); got != c.want {
			t.Errorf("MD5Crypt(%q, %q) = %s, want %s", c.pw, c.salt, got, c.want)
		}
	}
}

// The AES-256-ECB envelope against `printf 'hello whatsminer!' | openssl enc -aes-256-ecb -nopad -K KEY`
// with the input zero padded to 32 bytes.
func TestSealOpenKnownAnswer(t *testing.T) {
	var key [32]byte
	for i := range key {
		key[i] = byte(i)
	}
	sealed := Seal(key, []byte("hello whatsminer!"))
	if sealed != wantSealed {
		t.Fatalf("Seal = %s, want %s", sealed, wantSealed)
	}
	got, err := Open(key, sealed)
	if err != nil || string(got) != "hello whatsminer!" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for _, bad := range []string{"!!!", "", "AAAA"} {
		if _, err := Open(key, bad); !errors.Is(err, ErrEnvelope) {
			t.Errorf("Open(%q): %v, want ErrEnvelope", bad, err)
		}
	}
}

func TestDeriveV2Consistent(t *testing.T) {
	c := DeriveV2("admin", "BQ5hoXV9", "jbzkfQls", "1594179080")
	key := V2Key("admin", "BQ5hoXV9")
	if key != "RxmaDUO33TS7O26yeMHZ81" {
		t.Fatalf("key %s", key)
	}
	if c.Sign != V2Sign(key, "1594179080", "jbzkfQls") || len(c.Sign) != 22 {
		t.Fatalf("sign %s", c.Sign)
	}
	if hex.EncodeToString(c.AESKey[:4]) == "00000000" {
		t.Fatal("zero key")
	}
	if DeriveV2("admin1", "BQ5hoXV9", "jbzkfQls", "1594179080").AESKey == c.AESKey {
		t.Fatal("a different password gave the same AES key")
	}
}

func TestV3Token(t *testing.T) {
	// sha256("get.device.infosuperpwsalt1700000000"), base64, first 8: computed by `printf ... | openssl dgst -sha256 -binary | base64`.
	if got := V3Token("get.device.info", "superpw", "salt", 1700000000); got != wantV3Token {
		t.Fatalf("V3Token = %s, want %s", got, wantV3Token)
	}
}

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, []byte(`{"cmd":"x"}`)); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(b.Bytes())
	got, err := ReadFrame(bytes.NewReader(raw), 64)
	if err != nil || string(got) != `{"cmd":"x"}` {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := ReadFrame(bytes.NewReader(raw), 4); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(raw[:8]), 64); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ReadFrame(strings.NewReader(""), 64); !errors.Is(err, io.EOF) {
		t.Fatalf("empty: %v", err)
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := ReadFrame(bytes.NewReader(huge), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("4 GiB announced: %v", err)
	}
}

const (
	wantSealed  = "HTKrkXJjXgZWguoG4j2HKveDO+GysoZJd1wH7IPg/vo="
	wantV3Token = "tngpwOlh"
)
