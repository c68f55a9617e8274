// Package apiclient is a small typed client of the cloud's /api/v1, for the CLI (`hashfleet ctl`), tests,
// benchmarks and simulations. It speaks the same JSON the API serves (server/api/openapi.json) and turns
// the API's error body {"error":{"code","message"}} into an *Error.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxResponseBytes bounds every response body read (a 20,000-miner page is ~10 MB).
const MaxResponseBytes = 64 << 20

// Client calls one server's API with one bearer token. The zero HTTP client is http.DefaultClient.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080 (a trailing slash is fine)
	Token   string
	HTTP    *http.Client
}

// New returns a client of base with token, validating base.
func New(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api client: server URL %q: want http(s)://host:port", base)
	}
	if token == "" {
		return nil, errors.New("api client: no API token (flag --token or $HASHFLEET_ADMIN_TOKEN)")
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: hc}, nil
}

// Error is a non-2xx answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("api: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("api: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Do sends method path with body (JSON-encoded unless nil) and decodes a 2xx answer into out (unless nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("api %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("api %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("api %s %s: read answer: %w", method, path, err)
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("api %s %s: answer exceeds %d bytes", method, path, MaxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api %s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

func decodeError(status int, data []byte) error {
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &eb) == nil && (eb.Error.Code != "" || eb.Error.Message != "") {
		return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Message: msg}
}

// Miner is one row of GET /api/v1/miners (the fields the CLI uses; the API sends more).
type Miner struct {
	ID           string     `json:"id"`
	Node         string     `json:"node"`
	State        string     `json:"state"`
	Stale        bool       `json:"stale"`
	LastSeen     *time.Time `json:"last_seen"`
	HashrateThs  float64    `json:"hashrate_ths"`
	TempMaxC     float64    `json:"temp_max_c"`
	PowerW       float64    `json:"power_w"`
	PowerTargetW float64    `json:"power_target_w"`
	Model        string     `json:"model"`
	Address      string     `json:"address"`
	Error        string     `json:"error"`
}

// MinerList is GET /api/v1/miners.
type MinerList struct {
	Total  int            `json:"total"`
	Offset int            `json:"offset"`
	Limit  int            `json:"limit"`
	Counts map[string]int `json:"counts"`
	Items  []Miner        `json:"items"`
}

// MinerQuery filters GET /api/v1/miners; zero fields are left out.
type MinerQuery struct {
	State  string // comma-separated state names, or "stale"
	Search string
	Limit  int
	Offset int
}

// Miners lists one page of miners.
func (c *Client) Miners(ctx context.Context, q MinerQuery) (MinerList, error) {
	v := url.Values{}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	path := "/api/v1/miners"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out MinerList
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// AllMinerIDs pages through every miner matching q (q.Limit is the page size; default 1000).
func (c *Client) AllMinerIDs(ctx context.Context, q MinerQuery) ([]string, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var ids []string
	for q.Offset = 0; ; q.Offset += q.Limit {
		page, err := c.Miners(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, m := range page.Items {
			ids = append(ids, m.ID)
		}
		if len(page.Items) == 0 || q.Offset+len(page.Items) >= page.Total {
			return ids, nil
		}
	}
}

// Pool is one pool of update_pools.
type Pool struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password,omitempty"`
	Priority int32  `json:"priority"`
}

// CommandRequest is POST /api/v1/commands.
type CommandRequest struct {
	MinerIDs       []string `json:"miner_ids"`
	Action         string   `json:"action"`
	PowerTargetW   float64  `json:"power_target_w,omitempty"`
	Pools          []Pool   `json:"pools,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

// Accepted answers POST /api/v1/commands.
type Accepted struct {
	CommandID string `json:"command_id"`
	Existing  bool   `json:"existing"`
}

// MinerResult is one miner's result of a command.
type MinerResult struct {
	MinerID    string     `json:"miner_id"`
	Status     string     `json:"status"`
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Command is GET /api/v1/commands/{id}.
type Command struct {
	CommandID  string         `json:"command_id"`
	Action     string         `json:"action"`
	Status     string         `json:"status"`
	CreatedAt  *time.Time     `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at"`
	Summary    map[string]int `json:"summary"`
	// Miners is how many miners the command names (0 from a server older than the field).
	Miners  int           `json:"miners"`
	Results []MinerResult `json:"results"`
	// NextResultsAfter, on a page of results (CommandResults), starts the next page; "" after the last.
	NextResultsAfter string `json:"next_results_after"`
}

// Final reports how many miners have a final result (succeeded, failed or timed out).
func (c Command) Final() int {
	return c.Summary["succeeded"] + c.Summary["failed"] + c.Summary["timeout"]
}

// Done reports whether every miner has a final result.
func (c Command) Done() bool {
	n := c.Miners
	if n == 0 {
		n = len(c.Results)
	}
	return n > 0 && c.Final() >= n
}

// IssueCommand posts a command.
func (c *Client) IssueCommand(ctx context.Context, req CommandRequest) (Accepted, error) {
	var out Accepted
	return out, c.Do(ctx, http.MethodPost, "/api/v1/commands", req, &out)
}

// Command reads a command's state.
func (c *Client) Command(ctx context.Context, id string) (Command, error) {
	var out Command
	return out, c.Do(ctx, http.MethodGet, "/api/v1/commands/"+url.PathEscape(id), nil, &out)
}

// CommandSummary reads a command's status and counts without its per-miner results (?summary=1): what a
// progress view polls.
func (c *Client) CommandSummary(ctx context.Context, id string) (Command, error) {
	var out Command
	return out, c.Do(ctx, http.MethodGet, "/api/v1/commands/"+url.PathEscape(id)+"?summary=1", nil, &out)
}

// CommandResults reads one page of a command's results: at most limit (0: every remaining one) after the
// miner after ("" from the first), only those with one of statuses when given. The page's NextResultsAfter
// starts the next one.
func (c *Client) CommandResults(ctx context.Context, id, after string, limit int, statuses ...string) (Command, error) {
	q := url.Values{}
	if after != "" {
		q.Set("results_after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(statuses) > 0 {
		q.Set("status", strings.Join(statuses, ","))
	}
	path := "/api/v1/commands/" + url.PathEscape(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Command
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Ports overrides discovery's probe ports per protocol.
type Ports struct {
	CGMiner     []int `json:"cgminer,omitempty"`
	AntminerWeb []int `json:"antminer_web,omitempty"`
	Proto       []int `json:"proto,omitempty"`
	TLS         []int `json:"tls,omitempty"`
}

// DiscoveryRequest is POST /api/v1/discovery.
type DiscoveryRequest struct {
	Node      string   `json:"node"`
	Targets   []string `json:"targets"`
	Ports     *Ports   `json:"ports,omitempty"`
	Protocols []string `json:"protocols,omitempty"`
}

// Device is a device a scan found.
type Device struct {
	DeviceID string `json:"device_id"`
	Node     string `json:"node"`
	Status   string `json:"status"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
	Model    string `json:"model"`
}

// ScanProgress counts a scan's work.
type ScanProgress struct {
	Total  int32 `json:"total"`
	Probed int32 `json:"probed"`
	Found  int32 `json:"found"`
	Errors int32 `json:"errors"`
}

// Scan is GET /api/v1/discovery/{id} (and, with only ScanID, Node and State set, the POST's answer).
type Scan struct {
	ScanID   string       `json:"scan_id"`
	Node     string       `json:"node"`
	State    string       `json:"state"`
	Targets  []string     `json:"targets"`
	Progress ScanProgress `json:"progress"`
	Message  string       `json:"message"`
	Devices  []Device     `json:"devices"`
	Errors   []string     `json:"errors"`
}

// Finished reports whether the scan reached a final state.
func (s Scan) Finished() bool {
	switch s.State {
	case "done", "failed", "refused", "canceled":
		return true
	}
	return false
}

// StartDiscovery asks a node to scan.
func (c *Client) StartDiscovery(ctx context.Context, req DiscoveryRequest) (Scan, error) {
	var out Scan
	return out, c.Do(ctx, http.MethodPost, "/api/v1/discovery", req, &out)
}

// Discovery reads a scan.
func (c *Client) Discovery(ctx context.Context, id string) (Scan, error) {
	var out Scan
	return out, c.Do(ctx, http.MethodGet, "/api/v1/discovery/"+url.PathEscape(id), nil, &out)
}

// Key is one org command-issuance key of GET /api/v1/keys.
type Key struct {
	KeyID       string     `json:"key_id"`
	State       string     `json:"state"`
	PublicKey   string     `json:"public_key"`
	Fingerprint string     `json:"fingerprint"`
	ValidFrom   *time.Time `json:"valid_from"`
	RetireAfter *time.Time `json:"retire_after"`
	Revoked     bool       `json:"revoked"`
}

// KeyChange answers a rotation or a revocation: the key made or revoked and the nodes told.
type KeyChange struct {
	KeyID       string     `json:"key_id"`
	SignerKeyID string     `json:"signer_key_id,omitempty"`
	RetireAt    *time.Time `json:"retire_at,omitempty"`
	Nodes       []string   `json:"nodes"`
}

// Keys lists the org's command keys.
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	return out.Keys, c.Do(ctx, http.MethodGet, "/api/v1/keys", nil, &out)
}

// RotateKey makes a new active key; the old one stays valid for overlap (0: the server's default).
func (c *Client) RotateKey(ctx context.Context, overlap time.Duration) (KeyChange, error) {
	var out KeyChange
	body := map[string]int64{}
	if overlap > 0 {
		body["overlap_s"] = int64(overlap / time.Second)
	}
	return out, c.Do(ctx, http.MethodPost, "/api/v1/keys/rotate", body, &out)
}

// RevokeKey revokes a key for good. keyID may be given with its org prefix ("<org>/k_…") or without.
func (c *Client) RevokeKey(ctx context.Context, keyID string) (KeyChange, error) {
	var out KeyChange
	if i := strings.LastIndexByte(keyID, '/'); i >= 0 {
		keyID = keyID[i+1:]
	}
	if keyID == "" {
		return out, errors.New("revoke key: empty key id")
	}
	return out, c.Do(ctx, http.MethodPost, "/api/v1/keys/"+url.PathEscape(keyID)+"/revoke", nil, &out)
}
