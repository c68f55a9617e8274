package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrInvalidConfig: the Config cannot be used.
var ErrInvalidConfig = errors.New("invalid keys config")

// Config says where an org's keys live.
type Config struct {
	// Dir holds the key files (created 0700). "" keeps the keys in memory only.
	Dir string
	// OrgID is the org whose keys these are. Required.
	OrgID string
	// Clock dates signatures (key validity). Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Manager owns one org's issuance keys. Safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex // guards org; changes swap in a persisted copy
	org  *signing.OrgKeys
	file string
}

// FileName is the key file of org inside Dir.
func FileName(org string) string { return "commands-" + org + ".json" }

// Open loads the org's keys from cfg.Dir, or makes the first key (valid from now) and persists it.
func Open(cfg Config, now time.Time) (*Manager, error) {
	if cfg.OrgID == "" {
		return nil, fmt.Errorf("keys: OrgID is empty: %w", ErrInvalidConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With(slog.String("component", "keys"))}
	if cfg.Dir == "" {
		org, err := signing.NewOrgKeys(cfg.OrgID, now)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		m.org = org
		return m, nil
	}
	if err := secretfile.EnsureDir(cfg.Dir, "command key directory"); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	name := FileName(cfg.OrgID)
	m.file = filepath.Join(cfg.Dir, name)
	secretfile.RemoveStaleTemps(cfg.Dir, name)
	recs, err := load(m.file, cfg.OrgID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		org, err := signing.NewOrgKeys(cfg.OrgID, now)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if err := m.saveLocked(org.Export()); err != nil {
			return nil, err
		}
		m.org = org
		m.log.Info("made the org's first command-issuance key", slog.String("file", m.file))
	case err != nil:
		return nil, err
	default:
		org, err := signing.ImportOrgKeys(cfg.OrgID, recs)
		if err != nil {
			return nil, fmt.Errorf("keys: %s: %w", m.file, err)
		}
		m.org = org
	}
	return m, nil
}

// fileJSON is the key file.
type fileJSON struct {
	OrgID string    `json:"org_id"`
	Keys  []KeyJSON `json:"keys"`
}

// KeyJSON is one command key as the key file (and a cloud cluster's sealed key row) holds it.
type KeyJSON struct {
	Key  json.RawMessage `json:"key"`  // protojson pb.CommandKey (public record)
	Seed []byte          `json:"seed"` // ed25519 private seed, base64
}

// EncodeKeyRecords turns key records into their stored form.
func EncodeKeyRecords(recs []signing.KeyRecord) ([]KeyJSON, error) {
	out := make([]KeyJSON, 0, len(recs))
	for _, r := range recs {
		b, err := protojson.Marshal(r.Key)
		if err != nil {
			return nil, fmt.Errorf("encode command key %s: %w", r.Key.GetKeyId(), err)
		}
		out = append(out, KeyJSON{Key: b, Seed: r.PrivateSeed})
	}
	return out, nil
}

// DecodeKeyRecords reads key records back from their stored form; an unreadable one is named by index.
func DecodeKeyRecords(items []KeyJSON) ([]signing.KeyRecord, error) {
	out := make([]signing.KeyRecord, 0, len(items))
	for i, k := range items {
		ck := &pb.CommandKey{}
		if err := protojson.Unmarshal(k.Key, ck); err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		out = append(out, signing.KeyRecord{Key: ck, PrivateSeed: k.Seed})
	}
	return out, nil
}

func load(path, org string) ([]signing.KeyRecord, error) {
	raw, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var f fileJSON
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("keys: %s is not a key file: %v: %w", path, err, ErrInvalidConfig)
	}
	if f.OrgID != org {
		return nil, fmt.Errorf("keys: %s holds org %q, want %q: %w", path, f.OrgID, org, ErrInvalidConfig)
	}
	out, err := DecodeKeyRecords(f.Keys)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %v: %w", path, err, ErrInvalidConfig)
	}
	return out, nil
}

func (m *Manager) saveLocked(recs []signing.KeyRecord) error {
	if m.file == "" {
		return nil
	}
	items, err := EncodeKeyRecords(recs)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	b, err := json.MarshalIndent(fileJSON{OrgID: m.cfg.OrgID, Keys: items}, "", "  ")
	if err != nil {
		return fmt.Errorf("keys: encode: %w", err)
	}
	if err := secretfile.WriteAtomic(m.cfg.Dir, FileName(m.cfg.OrgID), append(b, '\n')); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// change runs fn on a copy of the keys, persists the copy, and only then makes it the keys signing uses: a
// failed write changes nothing.
func (m *Manager) change(fn func(*signing.OrgKeys) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next, err := signing.ImportOrgKeys(m.cfg.OrgID, m.org.Export())
	if err != nil {
		return fmt.Errorf("keys: copy: %w", err)
	}
	if err := fn(next); err != nil {
		return err
	}
	if err := m.saveLocked(next.Export()); err != nil {
		return err
	}
	m.org = next
	return nil
}

func (m *Manager) current() *signing.OrgKeys {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.org
}

// OrgID is the org.
func (m *Manager) OrgID() string { return m.cfg.OrgID }

// Sign signs cmd with the active key at the clock's now (grains.Signer).
func (m *Manager) Sign(cmd *pb.ControlCommand) error { return m.current().Sign(cmd, m.cfg.Clock.Now()) }

// Rotate makes a new active key and schedules the current one to retire after overlap (persisted first).
// Send the returned Rotation to every node, signed by Rotation.Sign (the key active until now).
func (m *Manager) Rotate(now time.Time, overlap time.Duration) (*signing.Rotation, error) {
	var rot *signing.Rotation
	err := m.change(func(o *signing.OrgKeys) error {
		var err error
		rot, err = o.Rotate(now, overlap)
		return err
	})
	if err != nil {
		return nil, err
	}
	m.log.Info("command key rotated", slog.String("new_key", rot.NewKeyID), slog.String("retiring_key", rot.SignerKeyID),
		slog.Time("retire_at", time.UnixMilli(rot.Announcement.GetRetireAtUnixMs())))
	return rot, nil
}

// Revoke revokes keyID for good (persisted first). Send the returned Revocation to every node, signed with
// the active key.
func (m *Manager) Revoke(keyID string, now time.Time) (*signing.Revocation, error) {
	var rev *signing.Revocation
	err := m.change(func(o *signing.OrgKeys) error {
		var err error
		rev, err = o.Revoke(keyID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	m.log.Warn("command key revoked", slog.String("key", keyID))
	return rev, nil
}

// Keys lists every key with its state at now.
func (m *Manager) List(now time.Time) []signing.KeyInfo { return m.current().Keys(now) }

// Keys are the public records of every key (revoked ones included), for EnrollResponse and HelloAck
// (grains.Signer).
func (m *Manager) Keys() []*pb.CommandKey { return m.current().PublicKeys() }

// Export returns every key with its private seed (tests sign forged and retired commands with it).
func (m *Manager) Export() []signing.KeyRecord { return m.current().Export() }
