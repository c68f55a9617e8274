package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// peersFile persists the last known address of each peer seen alive, so a restarted member can rejoin.
// Format: {"peers":{"<name>":"<host:port>"}}, written to a temporary file, fsynced and renamed.
type peersFile struct {
	path string

	mu    sync.Mutex
	peers map[string]string
}

type peersDoc struct {
	Peers map[string]string `json:"peers"`
}

func openPeersFile(path string) (*peersFile, error) {
	f := &peersFile{path: path, peers: map[string]string{}}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeersFile, err)
	}
	var doc peersDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w %s: %w (delete it to start over)", ErrPeersFile, path, err)
	}
	if doc.Peers != nil {
		f.peers = doc.Peers
	}
	return f, nil
}

func (f *peersFile) addrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.peers))
	slices.Sort(out)
	return out
}

// add records name at addr and rewrites the file when that changed anything.
func (f *peersFile) add(name, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.peers[name] == addr {
		return nil
	}
	f.peers[name] = addr
	if f.path == "" {
		return nil
	}
	b, err := json.Marshal(peersDoc{Peers: f.peers})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeersFile, err)
	}
	if err := writeAtomic(f.path, b); err != nil {
		return fmt.Errorf("%w %s: %w", ErrPeersFile, f.path, err)
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".peers-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
