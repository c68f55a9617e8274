package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/server/api/apiclient"
)

// The fanout and ingest suites run the real split-mode cloud server (bootstrap.StartServer: API, gateway over
// TLS, actors, store) in a process of its own, so that its CPU is measured apart from the nodes and the
// simulators: cloudProc starts it, ServeCloud is what that process runs.

// cloudReady is the file the cloud process writes once it serves: its addresses and the CA to pin.
type cloudReady struct {
	HTTP          string `json:"http"`
	Gateway       string `json:"gateway"`
	Metrics       string `json:"metrics"`
	CAFingerprint string `json:"ca_fingerprint"`
	// Profile serves CPU profiles of a window (cloudprof.go); "" when --cpuprofile profiles the whole run.
	Profile string `json:"profile,omitempty"`
}

// ServeCloud runs a split-mode cloud server on loopback until ctx ends: `--data-dir DIR --token T
// --ready-file FILE`. It is what `hashfleet bench serve-cloud` and the package's re-executed test binary run.
func ServeCloud(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve-cloud", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("data-dir", "", "the server's data directory (required)")
	token := fs.String("token", "", "API bearer token (required)")
	ready := fs.String("ready-file", "", "written with the bound addresses once the server serves (required)")
	level := fs.String("log-level", "error", "log level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *dir == "" || *token == "" || *ready == "" {
		return errors.New("serve-cloud: --data-dir, --token and --ready-file are required")
	}
	log, err := bootstrap.NewLogger(*level)
	if err != nil {
		return err
	}
	m := bootstrap.DefaultMetricsConfig()
	m.Listen = "127.0.0.1:0"
	p, err := bootstrap.StartServer(ctx, bootstrap.ServerOptions{DataDir: *dir, Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0",
		AdminToken: *token, Logger: log, Metrics: &m, DrainReconnectAfter: 100 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("serve-cloud: %w", err)
	}
	r := cloudReady{HTTP: p.HTTPAddr, Gateway: p.GatewayAddr, Metrics: p.MetricsAddr(), CAFingerprint: p.CA.Fingerprint()}
	if *cpuProfile == "" {
		ps, err := startProfileServer()
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(err, p.Stop(sctx))
		}
		defer ps.Close()
		r.Profile = ps.addr()
	}
	b, _ := json.Marshal(r)
	werr := os.WriteFile(*ready+".tmp", b, 0o600)
	if werr == nil {
		werr = os.Rename(*ready+".tmp", *ready)
	}
	if werr == nil {
		<-ctx.Done()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(werr, p.Stop(sctx))
}

// cloudProc is a running cloud process and an API client for it.
type cloudProc struct {
	cmd    *exec.Cmd
	dir    string
	out    *tailBuffer
	exited chan struct{}
	err    error
	ready  cloudReady
	token  string
	api    *apiclient.Client
}

const (
	cloudStartTimeout = time.Minute
	cloudStopTimeout  = 30 * time.Second
)

// startCloud starts the cloud process and waits until it serves.
func startCloud(ctx context.Context, o Options) (*cloudProc, error) {
	if len(o.CloudCommand) == 0 {
		return nil, fmt.Errorf("%w: no cloud command", ErrOptions)
	}
	dir, err := os.MkdirTemp("", "hashfleet-bench-cloud-")
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c := &cloudProc{dir: dir, out: &tailBuffer{max: 8 << 10}, exited: make(chan struct{}), token: hex.EncodeToString(tok)}
	readyFile := filepath.Join(dir, "ready.json")
	args := append(append([]string{}, o.CloudCommand[1:]...),
		"--data-dir", filepath.Join(dir, "data"), "--token", c.token, "--ready-file", readyFile)
	if o.CPUProfile != "" {
		args = append(args, "--cpuprofile", o.CPUProfile+".cloud")
	}
	c.cmd = exec.Command(o.CloudCommand[0], args...)
	c.cmd.Env = append(os.Environ(), o.CloudEnv...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = childAttr()
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: start cloud (%s): %w", ErrCloud, o.CloudCommand[0], err)
	}
	go func() { // ends when the process exits; Close makes sure it does
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	wctx, cancel := context.WithTimeout(ctx, cloudStartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(readyFile); err == nil {
			if err := json.Unmarshal(b, &c.ready); err != nil {
				c.Close()
				return nil, fmt.Errorf("%w: ready file: %w", ErrCloud, err)
			}
			break
		}
		select {
		case <-c.exited:
			c.Close()
			return nil, c.exitErr()
		case <-wctx.Done():
			c.Close()
			return nil, fmt.Errorf("%w: not ready: %w; its output: %s", ErrCloud, wctx.Err(), c.out)
		case <-tick.C:
		}
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	c.api, err = apiclient.New("http://"+c.ready.HTTP, c.token, hc)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *cloudProc) exitErr() error {
	return fmt.Errorf("%w: cloud exited (%v); its output: %s", ErrCloud, c.err, c.out)
}

// alive reports a cloud process that has exited.
func (c *cloudProc) alive() error {
	select {
	case <-c.exited:
		return c.exitErr()
	default:
		return nil
	}
}

// cpu is the CPU time the cloud process used so far.
func (c *cloudProc) cpu() time.Duration {
	t, _ := pidCPU(c.cmd.Process.Pid)
	return t
}

// rss is the cloud process's resident set.
func (c *cloudProc) rss() uint64 { return pidRSS(c.cmd.Process.Pid) }

// Close stops the cloud (SIGTERM, then SIGKILL after cloudStopTimeout) and removes its directory.
func (c *cloudProc) Close() error {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(cloudStopTimeout)
		select {
		case <-c.exited:
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		t.Stop()
	}
	return os.RemoveAll(c.dir)
}

// counter sums the samples of one Prometheus counter on the cloud's /metrics whose labels contain match
// (e.g. `result="applied"`; "" sums all).
func (c *cloudProc) counter(ctx context.Context, name, match string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.ready.Metrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cloud metrics: %w", err)
	}
	defer resp.Body.Close()
	return sumCounter(resp.Body, name, match)
}

// sumCounter reads a Prometheus text exposition and sums the samples of counter name whose labels contain
// match.
func sumCounter(r io.Reader, name, match string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("metrics: malformed line %q", l)
			}
			labels, rest = rest[:end+1], rest[end+1:]
		}
		if match != "" && !strings.Contains(labels, match) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("metrics: no value in %q", l)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %w", l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// quietLogger discards everything below errors.
func quietLogger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
