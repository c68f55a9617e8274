package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/store"
	"go.uber.org/fx"
)

// The running node's admin endpoint: read-only JSON on a loopback address, for the tools that cannot open
// the node's Badger directories while it runs (Badger lets one process hold a directory).
//
//	hashfleet store inspect --dir D ──(D locked)──▶ status.json: admin URL + token ──▶ GET /v1/stores/{kind}/{view}
//	hashfleet node backup ──(store locked)────────▶ status.json ─────────────────────▶ GET /v1/backup-state
//	                                                       running node: one Badger read transaction per request
//
//	GET /v1/stores                           the stores the node has open: [{kind, dir}]
//	GET /v1/stores/{kind}/summary            kind: node | spool; the JSON of `store inspect --json`
//	GET /v1/stores/{kind}/prefixes
//	GET /v1/stores/{kind}/get?key=KEY
//	GET /v1/stores/{kind}/scan?prefix=P&limit=N
//	GET /v1/stores/{kind}/audit?tail=N
//	GET /v1/spool                            spool depth, bytes, oldest entry, replay progress
//	GET /v1/backup-state                     seq mark, keyring, batch seqs, ownership: one snapshot
//
// It binds loopback addresses only (the default is 127.0.0.1 on a free port) and every request needs the
// bearer token the node writes, with the address, into its status file (0600, readable only by the node's
// user). Nothing it serves is secret (no private key, no api key: the keyring record redacts one), but the
// audit log and the device list are the operator's business only. It writes nothing.

// DefaultNodeAdminListen is where the admin endpoint listens unless told otherwise: loopback, a free port.
const DefaultNodeAdminListen = "127.0.0.1:0"

// NodeAdminOff turns the admin endpoint off (--admin-listen off).
const NodeAdminOff = "off"

// adminStatus is how status.json points at the admin endpoint.
type adminStatus struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
}

// adminNode is what the admin endpoint reads from a running node (node.Node implements it).
type adminNode interface {
	StoreDirs() map[string]string
	InspectStore(kind string, now func() time.Time, fn func(*inspect.Inspector) error) error
	Spool() (node.SpoolStatus, bool)
	BackupState() (store.BackupState, error)
}

// nodeAdmin is a running admin endpoint.
type nodeAdmin struct {
	url, token string
}

func (a *nodeAdmin) status() *adminStatus {
	if a == nil {
		return nil
	}
	return &adminStatus{URL: a.url, Token: a.token}
}

// validateAdminListen refuses anything but a loopback address.
func validateAdminListen(listen string) error {
	if listen == NodeAdminOff {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--admin-listen %q: %w", listen, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("--admin-listen %q: the node's admin endpoint listens on loopback only (127.0.0.1, ::1, localhost)", listen)
	}
	return nil
}

// serveNodeAdmin starts the admin endpoint on listen for the lifetime of the app (nil when listen is
// NodeAdminOff). Append it after the node, so it stops before the node closes its stores.
func serveNodeAdmin(lc fx.Lifecycle, log *slog.Logger, listen string, n adminNode) (*nodeAdmin, error) {
	if listen == NodeAdminOff {
		return nil, nil
	}
	if listen == "" {
		listen = DefaultNodeAdminListen
	}
	if err := validateAdminListen(listen); err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	a := &nodeAdmin{token: hex.EncodeToString(tok)}
	hs, err := serveHTTP(lc, log, listen, nodeAdminHandler(n, a.token))
	if err != nil {
		return nil, fmt.Errorf("node admin endpoint: %w", err)
	}
	a.url = "http://" + hs.addr
	return a, nil
}

// adminError is the JSON body of every admin endpoint error; Code names the sentinel the client maps back.
type adminError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Admin error codes.
const (
	adminCodeBadRequest  = "bad_request"
	adminCodeKeyNotFound = "key_not_found"
	adminCodeNoAudit     = "no_audit"
	adminCodeNoStore     = "no_such_store"
	adminCodeStopped     = "stopped"
	adminCodeInternal    = "internal"
	adminCodeAuth        = "unauthorized"
)

func nodeAdminHandler(n adminNode, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stores", func(w http.ResponseWriter, _ *http.Request) {
		type entry struct {
			Kind string `json:"kind"`
			Dir  string `json:"dir"`
		}
		out := struct {
			Stores []entry `json:"stores"`
		}{Stores: []entry{}}
		for kind, dir := range n.StoreDirs() {
			if abs, err := filepath.Abs(dir); err == nil && dir != "" {
				dir = abs
			}
			out.Stores = append(out.Stores, entry{kind, dir})
		}
		sort.Slice(out.Stores, func(i, j int) bool { return out.Stores[i].Kind < out.Stores[j].Kind })
		writeAdminJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/stores/{kind}/{view}", func(w http.ResponseWriter, r *http.Request) {
		o := StoreInspectOptions{View: r.PathValue("view"), Kind: r.PathValue("kind")}
		q := r.URL.Query()
		switch o.View {
		case "get":
			o.Arg = q.Get("key")
		case "scan":
			o.Arg = q.Get("prefix")
		}
		var err error
		if o.Limit, err = queryInt(q, "limit"); err == nil {
			o.Tail, err = queryInt(q, "tail")
		}
		if err == nil {
			err = o.validateView()
		}
		if err != nil {
			writeAdminError(w, err)
			return
		}
		var v any
		err = n.InspectStore(o.Kind, nil, func(in *inspect.Inspector) error {
			var err error
			v, err = storeView(in, o)
			return err
		})
		if err != nil {
			writeAdminError(w, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /v1/spool", func(w http.ResponseWriter, _ *http.Request) {
		sp, ok := n.Spool()
		if !ok {
			writeAdminError(w, fmt.Errorf("spool: %w", node.ErrNoSuchStore))
			return
		}
		writeAdminJSON(w, http.StatusOK, spoolJSON(sp, time.Now()))
	})
	mux.HandleFunc("GET /v1/backup-state", func(w http.ResponseWriter, _ *http.Request) {
		st, err := n.BackupState()
		if err != nil {
			writeAdminError(w, err)
			return
		}
		b, err := encodeBackupState(st)
		if err != nil {
			writeAdminError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
			writeAdminJSON(w, http.StatusUnauthorized, adminError{Error: "the node's admin endpoint needs the bearer token from its status file", Code: adminCodeAuth})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func queryInt(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer: %w", name, s, errBadRequest)
	}
	return n, nil
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = inspect.WriteJSON(w, v)
}

func writeAdminError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, adminCodeInternal
	switch {
	case errors.Is(err, errBadRequest):
		status, code = http.StatusBadRequest, adminCodeBadRequest
	case errors.Is(err, inspect.ErrKeyNotFound):
		status, code = http.StatusNotFound, adminCodeKeyNotFound
	case errors.Is(err, inspect.ErrNoAudit):
		status, code = http.StatusNotFound, adminCodeNoAudit
	case errors.Is(err, node.ErrNoSuchStore):
		status, code = http.StatusNotFound, adminCodeNoStore
	case errors.Is(err, node.ErrNotStarted), errors.Is(err, node.ErrStopped), errors.Is(err, store.ErrClosed):
		status, code = http.StatusServiceUnavailable, adminCodeStopped
	}
	writeAdminJSON(w, status, adminError{Error: err.Error(), Code: code})
}

// errBadRequest marks a request the admin endpoint cannot serve as asked (an unknown view, a missing key).
var errBadRequest = errors.New("bad request")

// adminClient calls a running node's admin endpoint.
type adminClient struct {
	url, token string
	http       *http.Client
}

func newAdminClient(s *adminStatus) adminClient {
	return adminClient{url: s.URL, token: s.Token, http: &http.Client{Timeout: 30 * time.Second}}
}

// get fetches path (with query) into out; an error body comes back as an error wrapping the sentinel its
// code names.
func (c adminClient) get(ctx context.Context, path string, q url.Values, out any) error {
	u := c.url + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the running node's admin endpoint %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("the running node's admin endpoint %s: %w", c.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e adminError
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return fmt.Errorf("the running node's admin endpoint %s: %s %s", c.url, u, resp.Status)
		}
		var sentinel error
		switch e.Code {
		case adminCodeKeyNotFound:
			sentinel = inspect.ErrKeyNotFound
		case adminCodeNoAudit:
			sentinel = inspect.ErrNoAudit
		case adminCodeBadRequest:
			sentinel = errBadRequest
		case adminCodeStopped:
			sentinel = node.ErrStopped
		}
		if sentinel != nil {
			return fmt.Errorf("%s (from the running node): %w", e.Error, sentinel)
		}
		return fmt.Errorf("the running node's admin endpoint: %s", e.Error)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = body
		return nil
	default:
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("the running node's admin endpoint %s: decode %s: %w", c.url, path, err)
		}
		return nil
	}
}

// runningNodeAdmin finds the admin endpoint of the running node whose data directory holds dir (the node's
// data directory itself, its store, or its spool), from the status file the node writes. ok is false when no
// running node with an endpoint is named there.
func runningNodeAdmin(dir string) (c adminClient, dataDir string, ok bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return adminClient{}, "", false
	}
	for d, i := abs, 0; i < 3; d, i = filepath.Dir(d), i+1 {
		b, err := os.ReadFile(filepath.Join(d, nodeStatusFile))
		if err != nil {
			continue
		}
		var r NodeStatusReport
		if json.Unmarshal(b, &r) != nil || !r.Running || r.Admin == nil || r.Admin.URL == "" || !processAlive(r.PID) {
			continue
		}
		return newAdminClient(r.Admin), d, true
	}
	return adminClient{}, "", false
}

// storeKindAt asks the running node which of its stores lives in dir.
func (c adminClient) storeKindAt(ctx context.Context, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var l struct {
		Stores []struct {
			Kind string `json:"kind"`
			Dir  string `json:"dir"`
		} `json:"stores"`
	}
	if err := c.get(ctx, "/v1/stores", nil, &l); err != nil {
		return "", err
	}
	for _, s := range l.Stores {
		if sameDir(s.Dir, abs) {
			return s.Kind, nil
		}
	}
	return "", fmt.Errorf("the node running from this data directory has no store at %s", abs)
}

func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
