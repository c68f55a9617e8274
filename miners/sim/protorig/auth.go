package protorig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// jwtHeader and jwtClaims are the parts of a JWT the simulator reads.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

type jwtClaims struct {
	Iss string          `json:"iss,omitempty"`
	Sub string          `json:"sub,omitempty"`
	Aud json.RawMessage `json:"aud,omitempty"`
	Iat *int64          `json:"iat,omitempty"`
	Exp *int64          `json:"exp,omitempty"`
	Jti string          `json:"jti,omitempty"`
	Use string          `json:"use,omitempty"` // "access" or "refresh" on the rig's own tokens
}

// mintHS256 makes one of the rig's own tokens (password login).
func mintHS256(secret []byte, use string, now time.Time, ttl time.Duration) string {
	var id [12]byte
	_, _ = rand.Read(id[:])
	exp, iat := now.Add(ttl).Unix(), now.Unix()
	h, _ := json.Marshal(jwtHeader{Alg: "HS256", Typ: "JWT"})
	c, _ := json.Marshal(jwtClaims{Sub: "admin", Use: use, Iat: &iat, Exp: &exp, Jti: hex.EncodeToString(id[:])})
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(mac.Sum(nil))
}

// splitJWT decodes a compact JWS into header, claims, signing input and signature.
func splitJWT(tok string) (jwtHeader, jwtClaims, []byte, []byte, error) {
	var h jwtHeader
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return h, c, nil, nil, errors.New("token is not a compact JWS")
	}
	hb, err1 := b64.DecodeString(parts[0])
	cb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return h, c, nil, nil, fmt.Errorf("token is not base64url: %w", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, c, nil, nil, fmt.Errorf("token header: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(cb))
	if err := dec.Decode(&c); err != nil {
		return h, c, nil, nil, fmt.Errorf("token claims: %w", err)
	}
	return h, c, []byte(parts[0] + "." + parts[1]), sig, nil
}

// verifyHS256 checks one of the rig's own tokens.
func verifyHS256(tok string, secret []byte, use string, now time.Time, revoked map[string]bool) (jwtClaims, error) {
	h, c, signing, sig, err := splitJWT(tok)
	if err != nil {
		return c, err
	}
	if h.Alg != "HS256" {
		return c, fmt.Errorf("alg %q is not this rig's", h.Alg)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(signing)
	if !hmac.Equal(mac.Sum(nil), sig) {
		return c, errors.New("bad signature")
	}
	if c.Use != use {
		return c, fmt.Errorf("a %s token where a %s token is needed", c.Use, use)
	}
	if c.Exp == nil || now.Unix() >= *c.Exp {
		return c, errors.New("token expired")
	}
	if revoked[c.Jti] {
		return c, errors.New("token logged out")
	}
	return c, nil
}

// verifyEdDSA checks a node-signed JWT against the paired key. aud must name this rig's serial.
func verifyEdDSA(tok string, key ed25519.PublicKey, serial string, now time.Time, maxTTL, leeway time.Duration) (jwtClaims, error) {
	h, c, signing, sig, err := splitJWT(tok)
	if err != nil {
		return c, err
	}
	if h.Alg != "EdDSA" {
		return c, fmt.Errorf("alg %q, want EdDSA", h.Alg)
	}
	if !strings.EqualFold(h.Typ, "JWT") {
		return c, fmt.Errorf("typ %q, want JWT", h.Typ)
	}
	if len(key) != ed25519.PublicKeySize {
		return c, errors.New("rig is not paired")
	}
	if !ed25519.Verify(key, signing, sig) {
		return c, errors.New("signature does not verify with the paired key")
	}
	if c.Iat == nil || c.Exp == nil {
		return c, errors.New("iat and exp are required")
	}
	iat, exp := time.Unix(*c.Iat, 0), time.Unix(*c.Exp, 0)
	switch {
	case !exp.After(iat):
		return c, errors.New("exp is not after iat")
	case exp.Sub(iat) > maxTTL:
		return c, fmt.Errorf("lifetime %v exceeds %v", exp.Sub(iat), maxTTL)
	case iat.After(now.Add(leeway)):
		return c, errors.New("iat is in the future")
	case !now.Before(exp.Add(leeway)):
		return c, errors.New("token expired")
	}
	if !audHas(c.Aud, serial) {
		return c, fmt.Errorf("aud does not name this rig (%s)", serial)
	}
	return c, nil
}

func audHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}
