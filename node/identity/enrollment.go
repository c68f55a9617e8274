package identity

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// Enrollment is what the node learned when it enrolled. It holds the api_key, a secret, so it is written
// 0600 like the keys, but in its own file: no private key sits beside it.
type Enrollment struct {
	NodeID    string `json:"node_id"`
	OrgID     string `json:"org_id"`
	ServerURL string `json:"server_url"`
	// CAPEM is the server CA the node pins (PEM); empty only for a loopback server URL.
	CAPEM string `json:"ca_pem,omitempty"`
	// APIKey is empty until the operator confirmed the node's fingerprint.
	APIKey     string    `json:"api_key,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	// Site is where the node is enrolled (its enrollment code's site); "" when none, or when the node was
	// enrolled before the cloud said so.
	Site string `json:"site,omitempty"`
}

// Validate says what is missing or malformed.
func (e Enrollment) Validate() error {
	switch {
	case e.NodeID == "":
		return fmt.Errorf("node_id is empty: %w", ErrInvalidEnrollment)
	case e.OrgID == "":
		return fmt.Errorf("org_id is empty: %w", ErrInvalidEnrollment)
	case e.ServerURL == "":
		return fmt.Errorf("server_url is empty: %w", ErrInvalidEnrollment)
	}
	u, err := url.Parse(e.ServerURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("server_url %q is not a URL with a host: %w", e.ServerURL, ErrInvalidEnrollment)
	}
	if e.CAPEM != "" {
		rest := []byte(e.CAPEM)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				return fmt.Errorf("ca_pem holds a %q block, want CERTIFICATE: %w", b.Type, ErrInvalidEnrollment)
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("ca_pem: %v: %w", err, ErrInvalidEnrollment)
			}
			n++
		}
		if n == 0 {
			return fmt.Errorf("ca_pem holds no certificate: %w", ErrInvalidEnrollment)
		}
	}
	return nil
}

// SaveEnrollment validates e and writes it to dir/enrollment.json (0600, atomically). The directory must
// already exist with mode 0700 (Create makes it).
func SaveEnrollment(dir string, e Enrollment) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	if err := secretfile.WriteAtomic(dir, EnrollmentFile, append(b, '\n')); err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	return nil
}

// LoadEnrollment reads dir/enrollment.json, refusing it if it or the directory is accessible by group or
// others. ErrNotEnrolled if there is none.
func LoadEnrollment(dir string) (Enrollment, error) {
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return Enrollment{}, fmt.Errorf("load enrollment: %w", err)
	}
	path := filepath.Join(dir, EnrollmentFile)
	raw, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Enrollment{}, fmt.Errorf("load enrollment: %s: %w", path, ErrNotEnrolled)
	}
	if err != nil {
		return Enrollment{}, fmt.Errorf("load enrollment: %w", err)
	}
	var e Enrollment
	if err := json.Unmarshal(raw, &e); err != nil {
		return Enrollment{}, fmt.Errorf("load enrollment: %s: %v: %w", path, err, ErrInvalidEnrollment)
	}
	if err := e.Validate(); err != nil {
		return Enrollment{}, fmt.Errorf("load enrollment: %s: %w", path, err)
	}
	return e, nil
}
