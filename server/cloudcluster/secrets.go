package cloudcluster

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/keys"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/tlsca"
)

// Secrets every member shares (docs/CLUSTER.md, "Shared secrets"): the org's TLS CA, its command-issuance
// keys and the enrollment secret (the HMAC key of enrollment codes and session tokens). They live in the
// shared Postgres store, table cluster_secrets, private material sealed with AES-256-GCM under a
// key-encryption key (KEK) each member is given as a 0600 file:
//
//	member ──LoadKEK(--cluster-kek-file)──▶ KEK ──OpenSecrets──▶ INSERT … ON CONFLICT DO NOTHING (candidate)
//	                                                         └─▶ SELECT the stored row, check kek_id, open
//
// The first member to start creates each secret; every other member (including ones starting at the same
// moment, whose candidates lose the insert) opens the stored one. A member with another KEK fails with
// ErrWrongKEK and changes nothing.

// KEKSize is the size of a key-encryption key.
const KEKSize = 32

// Errors of the shared secrets.
var (
	// ErrKEK: the key-encryption key file is missing, unreadable, group/world-accessible or malformed.
	ErrKEK = errors.New("cluster key-encryption key")
	// ErrWrongKEK: a stored secret was sealed under another key-encryption key than this member's.
	ErrWrongKEK = errors.New("cluster secret sealed under another key-encryption key")
	// ErrCorruptSecret: a stored secret does not open or does not decode (tampered or garbage).
	ErrCorruptSecret = errors.New("corrupt cluster secret")
)

// Names of the rows in cluster_secrets.
const (
	secretCA     = "tls-ca"
	secretEnroll = "enroll-secret"
	secretKeys   = "command-keys/" // + org id
)

// KEK is a member's key-encryption key.
type KEK struct {
	seal []byte // AES-256 key derived for sealing
	id   string
}

// ID names the key (hex, derived from it; reveals nothing about it). Rows record the id they were sealed
// under, so a member given another key is told so instead of failing to decrypt.
func (k KEK) ID() string { return k.id }

func newKEK(raw []byte) (KEK, error) {
	if len(raw) != KEKSize {
		return KEK{}, fmt.Errorf("%w: %d bytes, want %d", ErrKEK, len(raw), KEKSize)
	}
	if subtle.ConstantTimeCompare(raw, make([]byte, KEKSize)) == 1 {
		return KEK{}, fmt.Errorf("%w: all zero bytes", ErrKEK)
	}
	id := hmac.New(sha256.New, raw)
	id.Write([]byte("hashfleet-cluster-kek-id-v1"))
	sk := hmac.New(sha256.New, raw)
	sk.Write([]byte("hashfleet-cluster-seal-key-v1"))
	return KEK{seal: sk.Sum(nil), id: hex.EncodeToString(id.Sum(nil)[:8])}, nil
}

// LoadKEK reads a key-encryption key file: the base64 of 32 random bytes (WriteKEK makes one). The file must
// be a regular file accessible by its owner only (0600); anything else is refused with ErrKEK.
func LoadKEK(path string) (KEK, error) {
	if path == "" {
		return KEK{}, fmt.Errorf("%w: no file given (--cluster-kek-file)", ErrKEK)
	}
	b, err := secretfile.Read(path)
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %w", ErrKEK, err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %s is not base64 (make one with `hashfleet server cluster-kek --out FILE`)", ErrKEK, path)
	}
	k, err := newKEK(raw)
	if err != nil {
		return KEK{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKEK makes a new random key-encryption key and writes it to path (0600, fsynced). It refuses to
// replace an existing file: a lost KEK makes the cluster's sealed secrets unreadable.
func WriteKEK(path string) (KEK, error) {
	raw := make([]byte, KEKSize)
	if _, err := rand.Read(raw); err != nil {
		return KEK{}, fmt.Errorf("%w: generate: %w", ErrKEK, err)
	}
	k, err := newKEK(raw)
	if err != nil {
		return KEK{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return KEK{}, fmt.Errorf("%w: create %s: %w", ErrKEK, path, err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return KEK{}, fmt.Errorf("%w: write %s: %w", ErrKEK, path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return k, nil
}

// aad binds a sealed value to its row name and the KEK id: a value copied under another name does not
// open.
func (k KEK) aad(name string) []byte {
	return []byte("hashfleet-cluster-secret-v1\x00" + name + "\x00" + k.id)
}

func (k KEK) gcm() (cipher.AEAD, error) {
	b, err := aes.NewCipher(k.seal)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plain for the row name: nonce ‖ AES-256-GCM ciphertext.
func (k KEK) Seal(name string, plain []byte) ([]byte, error) {
	g, err := k.gcm()
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plain)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	return g.Seal(nonce, nonce, plain, k.aad(name)), nil
}

// Open decrypts what Seal made for the row name; ErrCorruptSecret if it does not authenticate.
func (k KEK) Open(name string, sealed []byte) ([]byte, error) {
	g, err := k.gcm()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("%w: %s: sealed value is %d bytes, too short", ErrCorruptSecret, name, len(sealed))
	}
	plain, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], k.aad(name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not authenticate under this member's KEK (tampered, or copied from another row)", ErrCorruptSecret, name)
	}
	return plain, nil
}

// SecretStore holds the sealed rows (server/pgstore.Store).
type SecretStore interface {
	// LoadOrCreateSecret stores candidate unless a row of its name exists and returns the stored row.
	LoadOrCreateSecret(candidate pgstore.SecretRow) (row pgstore.SecretRow, created bool, err error)
}

// Secrets are the opened shared secrets of one org.
type Secrets struct {
	// CACertPEM is the org's CA certificate: what nodes pin.
	CACertPEM []byte
	caKeyPEM  []byte
	// EnrollSecret keys enrollment codes and session tokens (enroll.New).
	EnrollSecret []byte
	// Signer signs commands with the org's issuance keys (Config.Signer).
	Signer *OrgSigner
	// Created names the secrets this member created (the others were opened).
	Created []string
}

// OpenSecrets opens the org's shared secrets from st with kek, creating each one that does not exist yet.
func OpenSecrets(st SecretStore, kek KEK, orgID string, clk clock.Clock) (*Secrets, error) {
	if kek.id == "" {
		return nil, fmt.Errorf("%w: no key loaded", ErrKEK)
	}
	if clk == nil {
		clk = clock.Real()
	}
	now := clk.Now()
	s := &Secrets{}
	// The CA.
	certPEM, keyPEM, err := tlsca.NewCAPEM(now, 0)
	if err != nil {
		return nil, err
	}
	pub, plain, created, err := loadOrCreate(st, kek, secretCA, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if err := checkCA(pub, plain); err != nil {
		return nil, err
	}
	s.CACertPEM, s.caKeyPEM = pub, plain
	s.noteCreated(created, secretCA)
	// The enrollment secret.
	sec := make([]byte, enroll.SecretSize)
	if _, err := rand.Read(sec); err != nil {
		return nil, fmt.Errorf("generate enrollment secret: %w", err)
	}
	_, plain, created, err = loadOrCreate(st, kek, secretEnroll, nil, sec)
	if err != nil {
		return nil, err
	}
	if len(plain) < enroll.SecretSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want at least %d", ErrCorruptSecret, secretEnroll, len(plain), enroll.SecretSize)
	}
	s.EnrollSecret = plain
	s.noteCreated(created, secretEnroll)
	// The command-issuance keys.
	org, err := signing.NewOrgKeys(orgID, now)
	if err != nil {
		return nil, fmt.Errorf("command keys: %w", err)
	}
	kpub, kplain, err := encodeKeys(orgID, org.Export())
	if err != nil {
		return nil, err
	}
	name := secretKeys + orgID
	_, plain, created, err = loadOrCreate(st, kek, name, kpub, kplain)
	if err != nil {
		return nil, err
	}
	recs, err := decodeKeys(name, orgID, plain)
	if err != nil {
		return nil, err
	}
	if org, err = signing.ImportOrgKeys(orgID, recs); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSecret, name, err)
	}
	s.Signer = &OrgSigner{org: org, clk: clk}
	s.Signer.attach(st, kek, orgID, name) // keys.go: rotation, revocation and reload
	s.noteCreated(created, name)
	return s, nil
}

func (s *Secrets) noteCreated(created bool, name string) {
	if created {
		s.Created = append(s.Created, name)
	}
}

// CA is the shared CA with this member's own server certificate, kept in cfg.Dir for cfg.Hosts.
func (s *Secrets) CA(cfg tlsca.Config, now time.Time) (*tlsca.CA, error) {
	return tlsca.FromPEM(cfg, s.CACertPEM, s.caKeyPEM, now)
}

// loadOrCreate seals a candidate, stores it unless the row exists, and opens the stored row.
func loadOrCreate(st SecretStore, kek KEK, name string, public, plain []byte) (pub, opened []byte, created bool, err error) {
	sealed, err := kek.Seal(name, plain)
	if err != nil {
		return nil, nil, false, err
	}
	row, created, err := st.LoadOrCreateSecret(pgstore.SecretRow{Name: name, KEKID: kek.ID(), Public: public, Sealed: sealed})
	if err != nil {
		return nil, nil, false, fmt.Errorf("cluster secret %s: %w", name, err)
	}
	if row.KEKID != kek.ID() {
		return nil, nil, false, fmt.Errorf("%w: %s was sealed under KEK %s, this member's KEK is %s: give every member the same --cluster-kek-file (nothing was changed)",
			ErrWrongKEK, name, row.KEKID, kek.ID())
	}
	opened, err = kek.Open(name, row.Sealed)
	if err != nil {
		return nil, nil, false, err
	}
	return row.Public, opened, created, nil
}

// checkCA checks that the stored CA certificate and key decode and belong together.
func checkCA(certPEM, keyPEM []byte) error {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return fmt.Errorf("%w: %s: the certificate is not PEM", ErrCorruptSecret, secretCA)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil || !cert.IsCA {
		return fmt.Errorf("%w: %s: the certificate is not a CA certificate", ErrCorruptSecret, secretCA)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return fmt.Errorf("%w: %s: the key is not PEM", ErrCorruptSecret, secretCA)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	ek, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok || !ek.PublicKey.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: %s: the key does not match the certificate", ErrCorruptSecret, secretCA)
	}
	return nil
}

// keysJSON is the sealed form of the command keys (server/keys' file format).
type keysJSON struct {
	OrgID string         `json:"org_id"`
	Keys  []keys.KeyJSON `json:"keys"`
	// Announcements are the latest rotations' announcements, sent again on request (keys.go).
	Announcements []announcementJSON `json:"announcements,omitempty"`
}

// encodeKeys returns the public records (JSON list of protojson keys) and the sealed form's plaintext.
func encodeKeys(orgID string, recs []signing.KeyRecord, anns ...announcementJSON) (public, plain []byte, err error) {
	items, err := keys.EncodeKeyRecords(recs)
	if err != nil {
		return nil, nil, err
	}
	f := keysJSON{OrgID: orgID, Keys: items, Announcements: anns}
	pubs := make([]json.RawMessage, 0, len(items))
	for _, k := range items {
		pubs = append(pubs, k.Key)
	}
	if public, err = json.Marshal(pubs); err != nil {
		return nil, nil, fmt.Errorf("encode command keys: %w", err)
	}
	if plain, err = json.Marshal(f); err != nil {
		return nil, nil, fmt.Errorf("encode command keys: %w", err)
	}
	return public, plain, nil
}

func decodeKeys(name, orgID string, plain []byte) ([]signing.KeyRecord, error) {
	var f keysJSON
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptSecret, name, err)
	}
	if f.OrgID != orgID || len(f.Keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds org %q with %d keys, want org %q", ErrCorruptSecret, name, f.OrgID, len(f.Keys), orgID)
	}
	out, err := keys.DecodeKeyRecords(f.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptSecret, name, err)
	}
	return out, nil
}

// OrgSigner signs commands with the org's shared issuance keys (grains.Signer). Safe for concurrent use.
type OrgSigner struct {
	mu      sync.Mutex
	org     *signing.OrgKeys
	version int64 // of the stored row org was read from (0: not read back since start)
	clk     clock.Clock
	shared  *sharedKeys // the stored row (keys.go); nil: the keys cannot change
}

var _ grains.Signer = (*OrgSigner)(nil)

func (o *OrgSigner) current() *signing.OrgKeys {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.org
}

// Sign implements grains.Signer: the active key at the clock's now.
func (o *OrgSigner) Sign(cmd *pb.ControlCommand) error { return o.current().Sign(cmd, o.clk.Now()) }

// Keys implements grains.Signer: every key's public record (HelloAck, EnrollResponse).
func (o *OrgSigner) Keys() []*pb.CommandKey { return o.current().PublicKeys() }

// Export returns every key with its private seed (tests forge and verify with it).
func (o *OrgSigner) Export() []signing.KeyRecord { return o.current().Export() }
