package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

// The cloud process serves CPU profiles of a window on request, so that a suite profiles exactly its
// measurement window (a whole-run profile mixes in enrollment, pairing and the first samples of every
// miner). The handler is the bench's own, on its own loopback listener: nothing registers on
// http.DefaultServeMux.

// maxProfileWindow bounds one profile request.
const maxProfileWindow = 10 * time.Minute

// profileServer serves GET /profile?seconds=N: a CPU profile of the next N seconds (pprof format).
type profileServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func startProfileServer() (*profileServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("profile listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /profile", serveProfile)
	p := &profileServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln, done: make(chan struct{})}
	go func() { // ends when Close closes the listener
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *profileServer) addr() string { return p.ln.Addr().String() }

// Close stops the server (a profile in progress ends with its request) and waits for it.
func (p *profileServer) Close() error {
	err := p.srv.Close()
	<-p.done
	return err
}

// serveProfile profiles the process's CPU for ?seconds=N (1 ≤ N ≤ maxProfileWindow) or until the request
// ends, whichever is first. Only one profile runs at a time: a second request is refused with 409.
func serveProfile(w http.ResponseWriter, r *http.Request) {
	secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxProfileWindow {
		http.Error(w, fmt.Sprintf("seconds: an integer from 1 to %d", int(maxProfileWindow.Seconds())), http.StatusBadRequest)
		return
	}
	buf := &lockedBuffer{}
	if err := pprof.StartCPUProfile(buf); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	t := time.NewTimer(time.Duration(secs) * time.Second)
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	t.Stop()
	pprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(buf.bytes())
}

// lockedBuffer is the profile's destination: the profiler writes from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// windowProfile fetches a CPU profile of the cloud's next d into path (d rounded up to whole seconds). It
// runs until the profile is written or ctx ends; call its wait for the result.
type windowProfile struct {
	done chan struct{}
	err  error
}

func (c *cloudProc) profileWindow(ctx context.Context, d time.Duration, path string) *windowProfile {
	wp := &windowProfile{done: make(chan struct{})}
	if path == "" {
		close(wp.done)
		return wp
	}
	if c.ready.Profile == "" {
		wp.err = errors.New("cloud profile: the cloud serves no profiles")
		close(wp.done)
		return wp
	}
	secs := int((d + time.Second - 1) / time.Second)
	go func() { // ends when the profile is written or ctx ends (the request is cancelled)
		defer close(wp.done)
		wp.err = fetchProfile(ctx, fmt.Sprintf("http://%s/profile?seconds=%d", c.ready.Profile, secs), path)
	}()
	return wp
}

func (wp *windowProfile) wait() error {
	<-wp.done
	return wp.err
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cloud profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cloud profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("cloud profile: %s: %s", resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cloud profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("cloud profile %s: %w", path, err)
	}
	return f.Close()
}
