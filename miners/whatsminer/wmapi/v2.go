package wmapi

import (
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// V2 result codes the driver and the simulator use (from the API v2 description).
const (
	CodeInvalidCommand = 14  // invalid API command or data
	CodeInvalidJSON    = 23  // invalid JSON message
	CodePermission     = 45  // permission denied
	CodeOK             = 131 // command OK
	CodeError          = 132 // command error
	CodeTokenOK        = 134 // get token message OK
	CodeTokenError     = 135 // check token error
	CodeTokenOverMax   = 136 // token over max times
	CodeBase64Error    = 137 // base64 decode error
)

// V2Credentials are the values derived from the admin password and a get_token reply.
type V2Credentials struct {
	AESKey [32]byte
	Sign   string // the token sent in "token"
}

// DeriveV2 computes the AES key and token from the admin password and get_token's time, salt and newsalt.
func DeriveV2(password, salt, newsalt, timeField string) V2Credentials {
	key := V2Key(password, salt)
	return V2Credentials{AESKey: sha256.Sum256([]byte(key)), Sign: cryptHash(key+timeField, newsalt)}
}

// V2Key is the key field of MD5-crypt(password, salt); the miner, which stores it, needs no plaintext.
func V2Key(password, salt string) string { return cryptHash(password, salt) }

// V2Sign is the token for a key (V2Key) and get_token's time and newsalt.
func V2Sign(key, timeField, newsalt string) string { return cryptHash(key+timeField, newsalt) }

// Seal encrypts plaintext with AES-256-ECB after zero padding to the block size and returns it base64.
func Seal(key [32]byte, plaintext []byte) string {
	b, _ := aes.NewCipher(key[:]) // a 32-byte key cannot fail
	n := (len(plaintext) + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	if n == 0 {
		n = aes.BlockSize
	}
	buf := make([]byte, n)
	copy(buf, plaintext)
	for i := 0; i < n; i += aes.BlockSize {
		b.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// ErrEnvelope: an encrypted payload is not valid base64 or not a whole number of AES blocks.
var ErrEnvelope = errors.New("bad AES envelope")

// Open reverses Seal: base64, AES-256-ECB, trailing zero padding removed. Only the envelope's shape is
// checked: a wrong key gives garbage, which the caller's JSON parse refuses.
func Open(key [32]byte, data string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrEnvelope, err)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte blocks", ErrEnvelope, len(raw), aes.BlockSize)
	}
	b, _ := aes.NewCipher(key[:])
	for i := 0; i < len(raw); i += aes.BlockSize {
		b.Decrypt(raw[i:i+aes.BlockSize], raw[i:i+aes.BlockSize])
	}
	end := len(raw)
	for end > 0 && raw[end-1] == 0 {
		end--
	}
	return raw[:end], nil
}
