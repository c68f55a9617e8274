package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Retention of the artifact store. Artifacts are content-addressed files that nothing else deletes: firmware
// images operators upload and log bundles nodes send. A sweep removes
//   - tmp/ files older than TmpAge: leftovers of a Put that crashed;
//   - partial/ uploads not written to for PartialAge: a node that stopped mid-upload and never resumed;
//   - blobs not used (written or opened) for BlobAge and not in use by a command or rollout still running;
//   - with MaxBytes, the least recently used blobs not in use until the blobs fit.
//
// Opening a blob marks it used (its mtime), so a firmware image a site keeps installing stays.

// SweepPolicy says what a sweep removes.
type SweepPolicy struct {
	// TmpAge: tmp files older than this are crash leftovers. Default 1h.
	TmpAge time.Duration
	// PartialAge: an upload untouched this long is abandoned. Default 24h.
	PartialAge time.Duration
	// BlobAge: a blob unused this long goes, unless in use. Default 90 days; negative keeps blobs forever
	// (MaxBytes still applies).
	BlobAge time.Duration
	// MaxBytes caps the blobs' total size; 0 means no cap.
	MaxBytes int64
}

// DefaultSweepPolicy returns the documented defaults.
func DefaultSweepPolicy() SweepPolicy {
	return SweepPolicy{TmpAge: time.Hour, PartialAge: 24 * time.Hour, BlobAge: 90 * 24 * time.Hour}
}

// Validate checks the policy.
func (p SweepPolicy) Validate() error {
	var errs []error
	if p.TmpAge < time.Minute {
		errs = append(errs, fmt.Errorf("artifacts: TmpAge %s is below 1m (a Put in progress would lose its file)", p.TmpAge))
	}
	if p.PartialAge < time.Minute {
		errs = append(errs, fmt.Errorf("artifacts: PartialAge %s is below 1m (an upload in progress would lose its data)", p.PartialAge))
	}
	if p.BlobAge >= 0 && p.BlobAge < time.Hour {
		errs = append(errs, fmt.Errorf("artifacts: BlobAge %s is below 1h", p.BlobAge))
	}
	if p.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("artifacts: MaxBytes %d is negative", p.MaxBytes))
	}
	return errors.Join(errs...)
}

// SweepResult counts what a sweep removed and kept.
type SweepResult struct {
	Tmp, Partial, Blobs int   // files removed
	BytesFreed          int64 // bytes removed
	BlobsKept           int
	BytesKept           int64
}

type blobFile struct {
	sha  string
	size int64
	used time.Time
}

// Sweep removes what p says is stale as of now. inUse reports the blobs a running command or rollout still
// needs; they are never removed.
func (s *Store) Sweep(now time.Time, p SweepPolicy, inUse func(sha string) bool) (SweepResult, error) {
	var r SweepResult
	var errs []error
	for _, d := range []struct {
		dir   string
		age   time.Duration
		count *int
	}{{"tmp", p.TmpAge, &r.Tmp}, {"partial", p.PartialAge, &r.Partial}} {
		files, err := s.list(d.dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if now.Sub(f.used) > d.age {
				if err := s.remove(d.dir, f.sha); err != nil {
					errs = append(errs, err)
					continue
				}
				*d.count++
				r.BytesFreed += f.size
			}
		}
	}
	blobs, err := s.list("blobs")
	if err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	slices.SortFunc(blobs, func(a, b blobFile) int { return a.used.Compare(b.used) }) // least recently used first
	var total int64
	for _, b := range blobs {
		total += b.size
	}
	for _, b := range blobs {
		stale := p.BlobAge >= 0 && now.Sub(b.used) > p.BlobAge
		over := p.MaxBytes > 0 && total > p.MaxBytes
		if (!stale && !over) || ValidSHA(b.sha) != nil || inUse(b.sha) {
			r.BlobsKept++
			r.BytesKept += b.size
			continue
		}
		if err := s.remove("blobs", b.sha); err != nil {
			errs = append(errs, err)
			r.BlobsKept++
			r.BytesKept += b.size
			continue
		}
		r.Blobs++
		r.BytesFreed += b.size
		total -= b.size
	}
	return r, errors.Join(errs...)
}

func (s *Store) list(dir string) ([]blobFile, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, dir))
	if err != nil {
		return nil, fmt.Errorf("artifacts: list %s: %w", dir, err)
	}
	out := make([]blobFile, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("artifacts: stat %s/%s: %w", dir, e.Name(), err)
		}
		out = append(out, blobFile{sha: e.Name(), size: fi.Size(), used: fi.ModTime()})
	}
	return out, nil
}

func (s *Store) remove(dir, name string) error {
	if err := os.Remove(filepath.Join(s.dir, dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifacts: remove %s/%s: %w", dir, name, err)
	}
	return nil
}

// touch marks a blob used now (best effort: a read-only store still serves it).
func (s *Store) touch(sha string, now time.Time) { _ = os.Chtimes(s.blobPath(sha), now, now) }
