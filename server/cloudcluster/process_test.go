package cloudcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"google.golang.org/grpc"
)

// envMemberProcess, when set, makes the test binary run one cluster member (memberProcessMain) instead of
// the tests: the way tests get members they can kill -9.
const envMemberProcess = "HASHFLEET_CLOUDCLUSTER_MEMBER"

const processToken = "member-process-token-0123456789"

type processSpec struct {
	Etcd     string `json:"etcd"`
	DSN      string `json:"dsn"`
	Port     int    `json:"port"`
	Gateway  string `json:"gateway"`
	HTTP     string `json:"http"`
	LogLevel string `json:"log_level"`
}

// memberProcessMain runs one member with its gateway and cluster endpoints until SIGTERM/SIGINT, then
// drains and leaves gracefully. It prints "READY" on stdout once serving; logs go to stderr.
func memberProcessMain() int {
	var spec processSpec
	if err := json.Unmarshal([]byte(os.Getenv(envMemberProcess)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "member spec:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: spec.DSN, Logger: log})
	if err != nil {
		log.Error("store", slog.Any("err", err))
		return 1
	}
	defer st.Close()
	cfg := cloudcluster.DefaultConfig()
	cfg.Port, cfg.EtcdEndpoints, cfg.Store, cfg.LeaseStore, cfg.Logger = spec.Port, []string{spec.Etcd}, st, st, log
	cfg.PairMembers = func(string) ([2]string, error) { return [2]string{"n-a", "n-b"}, nil }
	m, err := cloudcluster.Start(cfg)
	if err != nil {
		log.Error("member", slog.Any("err", err))
		return 1
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Authenticator, gcfg.Logger = gateway.TrustNodeMetadata(), log
	gw, err := gateway.New(gcfg, m.Fleet())
	if err != nil {
		log.Error("gateway", slog.Any("err", err))
		return 1
	}
	gl, err := net.Listen("tcp", spec.Gateway)
	if err != nil {
		log.Error("gateway listen", slog.Any("err", err))
		return 1
	}
	srv := grpc.NewServer(gateway.ServerOptions(gcfg)...)
	pb.RegisterGatewayServer(srv, gw)
	go func() { _ = srv.Serve(gl) }()
	hs := &http.Server{Addr: spec.HTTP, Handler: m.Handler(processToken), ReadHeaderTimeout: 5 * time.Second}
	hl, err := net.Listen("tcp", spec.HTTP)
	if err != nil {
		log.Error("http listen", slog.Any("err", err))
		return 1
	}
	go func() { _ = hs.Serve(hl) }()
	fmt.Println("READY", m.ID())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = gw.Drain(ctx)
	srv.Stop()
	_ = hs.Shutdown(ctx)
	m.Stop(true)
	return 0
}

// memberProcess is a member running in its own process.
type memberProcess struct {
	cmd     *exec.Cmd
	id      string
	gateway string
	http    string
	logPath string
	exited  chan struct{}
}

func startMemberProcess(t *testing.T, etcd, dsn string) *memberProcess {
	t.Helper()
	spec := processSpec{Etcd: etcd, DSN: dsn, Port: testsvc.FreePort(t),
		Gateway: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)), HTTP: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))}
	b, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMemberProcess+"="+string(b))
	logPath := filepath.Join(t.TempDir(), "member.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &memberProcess{cmd: cmd, gateway: spec.Gateway, http: spec.HTTP, logPath: logPath, exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- id
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = cmd.Wait()
		_ = lf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.id = <-ready:
	case <-p.exited:
		t.Fatalf("member process exited before it was ready:\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("member process not ready in 30s:\n%s", p.log())
	}
	return p
}

func (p *memberProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (p *memberProcess) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func httpJSON(method, url string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+processToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			return res.StatusCode, err
		}
	}
	return res.StatusCode, nil
}

type issueResult struct {
	Seq          uint64 `json:"seq"`
	Sent         bool   `json:"sent"`
	StreamMember string `json:"stream_member"`
	GrainMember  string `json:"grain_member"`
	Error        string `json:"error"`
}

// issueUntilAcked issues one command through member p's HTTP endpoint, retrying (same command id) until
// the cloud acknowledges it or d passes.
func issueUntilAcked(ps []*memberProcess, node, id string, d time.Duration) (issueResult, int, error) {
	deadline := time.Now().Add(d)
	tries := 0
	var last error
	for time.Now().Before(deadline) {
		p := ps[tries%len(ps)]
		tries++
		var r issueResult
		code, err := httpJSON(http.MethodPost, "http://"+p.http+"/cluster/v1/nodes/"+node+"/commands",
			map[string]any{"command_id": id, "actor": "test"}, &r)
		if err == nil && code == http.StatusOK {
			return r, tries, nil
		}
		last = fmt.Errorf("HTTP %d %s: %v", code, r.Error, err)
		time.Sleep(100 * time.Millisecond)
	}
	return issueResult{}, tries, last
}
