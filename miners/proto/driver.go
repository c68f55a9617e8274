package proto

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/internal/httpx"
)

// Driver speaks the MDK REST API to one rig. Like every miners.Driver it is used from one goroutine at a
// time.
type Driver struct {
	id   string
	base url.URL
	cfg  Config
	web  *httpx.Client

	serial string // the rig's cb_sn, the JWT audience

	jwt    string
	jwtExp time.Time
	// preferPassword is set when the rig refused the JWT and the password worked; Pair clears it.
	preferPassword bool

	access, refresh string

	info   rigInfo
	infoAt time.Time

	curtail curtailKind
}

type curtailKind uint8

const (
	curtailNone    curtailKind = iota
	curtailFull                // stopped by CURTAIL
	curtailPartial             // power target lowered by CURTAIL
)

var _ miners.Driver = (*Driver)(nil)

// New returns a driver for dev (MinerId; WebAddress host:port of the REST API, or Address when WebAddress is
// empty; Serial, when known, saves a pairing-info request for the JWT audience).
func New(dev *pb.Device, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr := dev.GetWebAddress()
	if addr == "" {
		addr = dev.GetAddress()
	}
	if addr == "" {
		return nil, fmt.Errorf("proto: device %q has no address", dev.GetMinerId())
	}
	return &Driver{
		id: dev.GetMinerId(), base: url.URL{Scheme: cfg.Scheme, Host: addr}, cfg: cfg, serial: dev.GetSerial(),
		web: httpx.New(cfg.web(), accept, ErrSchemeMismatch),
	}, nil
}

// Close releases idle connections. It is safe to call more than once.
func (d *Driver) Close() error {
	d.web.CloseIdleConnections()
	return nil
}

// call performs one API request. in, when not nil, is sent as JSON; out, when not nil, receives the JSON
// reply. auth adds credentials, re-authenticating once on 401. It returns the HTTP status (2xx only; any
// other status is an error).
func (d *Driver) call(ctx context.Context, method, path string, query url.Values, in, out any, auth bool) (int, error) {
	what := method + " " + path
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("%s: encode request: %w", what, err)
		}
	}
	u := d.base
	u.Path = path
	u.RawQuery = query.Encode()
	var rep *httpx.Reply
	for attempt := 0; ; attempt++ {
		authz, usedJWT := "", false
		if auth {
			var err error
			if authz, usedJWT, err = d.authorization(ctx); err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
		}
		var err error
		if rep, err = d.web.Do(ctx, method, &u, body, func(string, string) string { return authz }); err != nil {
			return 0, err
		}
		if rep.Status != http.StatusUnauthorized || !auth {
			break
		}
		// 401 on an authenticated request.
		if usedJWT && d.cfg.Password == "" {
			return rep.Status, fmt.Errorf("%s: %s: %w: %w", what, rigMessage(rep.Body), ErrNotPaired, miners.ErrRefused)
		}
		if attempt > 0 {
			break
		}
		if usedJWT {
			d.preferPassword = true // fall back on the password, until the next Pair
			continue
		}
		if err := d.reauthenticate(ctx); err != nil {
			return rep.Status, fmt.Errorf("%s: %w", what, err)
		}
	}
	if rep.Status < 200 || rep.Status > 299 {
		return rep.Status, statusErr(what, rep)
	}
	if out != nil && rep.Status != http.StatusNoContent {
		if err := httpx.DecodeJSON(what, rep, out); err != nil {
			return rep.Status, err
		}
	}
	return rep.Status, nil
}

// authorization returns the Authorization header to send and whether it is the node's JWT.
func (d *Driver) authorization(ctx context.Context) (string, bool, error) {
	if d.cfg.SigningKey != nil && !(d.preferPassword && d.cfg.Password != "") {
		tok, err := d.token(ctx)
		if err != nil {
			return "", false, err
		}
		return "Bearer " + tok, true, nil
	}
	if d.cfg.Password == "" {
		return "", false, ErrNoCredentials
	}
	if d.access == "" {
		if err := d.login(ctx); err != nil {
			return "", false, err
		}
	}
	return "Bearer " + d.access, false, nil
}

// reauthenticate replaces a refused access token: refresh first, log in when the refresh is refused.
func (d *Driver) reauthenticate(ctx context.Context) error {
	d.access = ""
	if d.refresh != "" {
		var out struct {
			AccessToken string `json:"access_token"`
		}
		_, err := d.call(ctx, http.MethodPost, "/api/v1/auth/refresh", nil, map[string]string{"refresh_token": d.refresh}, &out, false)
		if err == nil && out.AccessToken != "" {
			d.access = out.AccessToken
			return nil
		}
		if err != nil && !errors.Is(err, miners.ErrRefused) {
			return err
		}
		d.refresh = ""
	}
	return d.login(ctx)
}

func (d *Driver) login(ctx context.Context) error {
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	_, err := d.call(ctx, http.MethodPost, "/api/v1/auth/login", nil, map[string]string{"password": d.cfg.Password}, &out, false)
	if err != nil {
		if errors.Is(err, miners.ErrRefused) {
			return fmt.Errorf("login refused: %w: %w", ErrBadPassword, err)
		}
		return fmt.Errorf("login: %w", err)
	}
	if out.AccessToken == "" {
		return fmt.Errorf("login: reply has no access_token: %w", miners.ErrMalformed)
	}
	d.access, d.refresh = out.AccessToken, out.RefreshToken
	return nil
}

// token returns a JWT for this rig, minting a new one when less than half of the current one's life is left.
func (d *Driver) token(ctx context.Context) (string, error) {
	now := d.cfg.Clock.Now()
	if d.jwt != "" && now.Before(d.jwtExp.Add(-d.cfg.TokenTTL/2)) {
		return d.jwt, nil
	}
	if d.serial == "" {
		if _, err := d.pairingInfo(ctx); err != nil {
			return "", fmt.Errorf("learn the rig's serial for the JWT audience: %w", err)
		}
	}
	tok, exp, err := signJWT(d.cfg.SigningKey, d.cfg.Issuer, d.serial, now, d.cfg.TokenTTL)
	if err != nil {
		return "", err
	}
	d.jwt, d.jwtExp = tok, exp
	return tok, nil
}

var b64url = base64.RawURLEncoding

// jwtHeader is fixed: the contract's EdDSA over ed25519.
var jwtHeader = b64url.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))

// signJWT makes a compact EdDSA JWT. Claims: iss, aud (the rig's serial), iat, exp, jti.
func signJWT(key crypto.Signer, iss, aud string, now time.Time, ttl time.Duration) (string, time.Time, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("jwt id: %w", err)
	}
	exp := now.Add(ttl).Truncate(time.Second)
	claims, err := json.Marshal(struct {
		Iss string `json:"iss"`
		Aud string `json:"aud"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
		Jti string `json:"jti"`
	}{iss, aud, now.Unix(), exp.Unix(), hex.EncodeToString(jti[:])})
	if err != nil {
		return "", time.Time{}, err
	}
	signing := jwtHeader + "." + b64url.EncodeToString(claims)
	sig, err := key.Sign(rand.Reader, []byte(signing), crypto.Hash(0))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign jwt: %w", err)
	}
	return signing + "." + b64url.EncodeToString(sig), exp, nil
}

// PairingInfo is what /api/v1/pairing/info tells about a rig.
type PairingInfo struct {
	MAC    string
	Serial string // control-board serial, cb_sn
}

func (d *Driver) pairingInfo(ctx context.Context) (PairingInfo, error) {
	var out struct {
		MAC  string `json:"mac"`
		CbSn string `json:"cb_sn"`
	}
	if _, err := d.call(ctx, http.MethodGet, "/api/v1/pairing/info", nil, nil, &out, false); err != nil {
		return PairingInfo{}, err
	}
	if out.CbSn == "" {
		return PairingInfo{}, fmt.Errorf("GET /api/v1/pairing/info: no cb_sn: %w", miners.ErrMalformed)
	}
	d.serial = out.CbSn
	return PairingInfo{MAC: out.MAC, Serial: out.CbSn}, nil
}

// Pair registers the node's signing key with the rig, so that later requests authenticate with JWTs. A rig
// that is not paired yet accepts the key without authentication; one paired to another key needs the
// password (or a JWT from the current key, which is what rotating to a new SigningKey looks like). Call it
// only for a device the operator confirmed as this node's.
func (d *Driver) Pair(ctx context.Context) (PairingInfo, error) {
	if d.cfg.SigningKey == nil {
		return PairingInfo{}, fmt.Errorf("pair %s: no SigningKey: %w", d.id, ErrNoCredentials)
	}
	info, err := d.pairingInfo(ctx)
	if err != nil {
		return PairingInfo{}, fmt.Errorf("pair %s: %w", d.id, err)
	}
	der, err := x509.MarshalPKIXPublicKey(d.cfg.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return PairingInfo{}, fmt.Errorf("pair %s: encode key: %w", d.id, err)
	}
	req := map[string]string{"public_key": base64.StdEncoding.EncodeToString(der)}
	_, err = d.call(ctx, http.MethodPost, "/api/v1/pairing/auth-key", nil, req, nil, false)
	if errors.Is(err, miners.ErrRefused) {
		// Already paired: replacing the key needs authentication, by the current key (ours, re-pairing) or,
		// failing that, the password.
		_, err = d.call(ctx, http.MethodPost, "/api/v1/pairing/auth-key", nil, req, nil, true)
	}
	if err != nil {
		return PairingInfo{}, fmt.Errorf("pair %s: %w", d.id, err)
	}
	d.preferPassword, d.jwt = false, ""
	return info, nil
}

// Unpair clears the rig's auth key (authenticated).
func (d *Driver) Unpair(ctx context.Context) error {
	if _, err := d.call(ctx, http.MethodDelete, "/api/v1/pairing/auth-key", nil, nil, nil, true); err != nil {
		return fmt.Errorf("unpair %s: %w", d.id, err)
	}
	return nil
}
