package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStorePutIsContentAddressed(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("firmware image v2")
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	m, err := s.Put(bytes.NewReader(data), "")
	if err != nil || m.SHA256 != want || m.Size != int64(len(data)) {
		t.Fatalf("put: %v %v", m, err)
	}
	if m2, err := s.Put(bytes.NewReader(data), want); err != nil || m2 != m {
		t.Fatalf("second put of the same bytes: %v %v", m2, err)
	}
	f, got, err := s.Open(want)
	if err != nil || got != m {
		t.Fatalf("open: %v %v", got, err)
	}
	_ = f.Close()
	if tmp, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestStoreRefusesHostileInput(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(bytes.NewReader(make([]byte, 1025)), ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	other := strings.Repeat("ab", 32)
	if _, err := s.Put(strings.NewReader("x"), other); !errors.Is(err, ErrChecksum) {
		t.Fatalf("wrong sha: %v", err)
	}
	if _, err := s.Stat(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused put was kept: %v", err)
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("g", 64), strings.Repeat("a", 63)} {
		if _, err := s.Stat(bad); !errors.Is(err, ErrBadSHA) {
			t.Errorf("Stat(%q) = %v, want ErrBadSHA", bad, err)
		}
		if _, err := s.Put(strings.NewReader("x"), bad); bad != "" && !errors.Is(err, ErrBadSHA) {
			t.Errorf("Put(want %q) = %v, want ErrBadSHA", bad, err)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("no Authenticate accepted")
	}
}
