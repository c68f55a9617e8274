package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/node/spool"
	nodestore "github.com/hashfleet/hashfleet/node/store"
	serverstore "github.com/hashfleet/hashfleet/server/store"
)

// StoreSchemas are the Badger stores hashfleet writes, as `hashfleet store inspect` knows them.
func StoreSchemas() []inspect.Schema {
	return []inspect.Schema{nodestore.Schema(), spool.Schema(), serverstore.Schema()}
}

// StoreViews are the views of `hashfleet store inspect`; summary is the default.
var StoreViews = []string{"summary", "prefixes", "get", "scan", "audit"}

// StoreInspectOptions is one `hashfleet store inspect` run.
type StoreInspectOptions struct {
	// Dir is the node's or server's Badger directory (a node's spool is its own: <data-dir>/spool). Required.
	Dir string
	// View is one of StoreViews; "" is summary.
	View string
	// Arg is the KEY of get and the PREFIX of scan (a prefix name such as "audit", or key text).
	Arg string
	// JSON writes machine-readable output.
	JSON bool
	// Limit bounds scan (default 20); Tail is how many audit records (default 20).
	Limit, Tail int
	// RecoverCopy inspects a recovered private copy of a store its process did not close (killed, crashed).
	RecoverCopy bool
	// Kind skips detection ("node", "spool", "server").
	Kind string
	// Now is the time ages are computed against; default time.Now.
	Now func() time.Time
}

// RunStoreInspect opens o.Dir read-only and writes one view to out. The directory is never written. When a
// running node holds the directory (Badger's lock), the same view comes from that node's loopback admin
// endpoint, named in the status file it writes: a consistent snapshot of the live store.
func RunStoreInspect(ctx context.Context, o StoreInspectOptions, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.View == "" {
		o.View = "summary"
	}
	if err := o.validateView(); err != nil {
		return err
	}
	if o.Dir == "" {
		return errors.New("--dir is required: the node's or server's data directory")
	}
	cfg := inspect.DefaultConfig(o.Dir, StoreSchemas()...)
	cfg.Kind, cfg.RecoverCopy = o.Kind, o.RecoverCopy
	if o.Now != nil {
		cfg.Now = o.Now
	}
	in, err := inspect.Open(cfg)
	if errors.Is(err, inspect.ErrLocked) {
		if c, _, ok := runningNodeAdmin(o.Dir); ok {
			return inspectRunningNode(ctx, c, o, out)
		}
	}
	if err != nil {
		return err
	}
	defer in.Close()
	v, err := storeView(in, o)
	if err != nil {
		return err
	}
	return writeView(out, o, v, "")
}

// validateView checks the view and its argument.
func (o StoreInspectOptions) validateView() error {
	if o.View == "" {
		o.View = "summary"
	}
	if !slices.Contains(StoreViews, o.View) {
		return fmt.Errorf("unknown view %q: want one of %s: %w", o.View, strings.Join(StoreViews, ", "), errBadRequest)
	}
	if (o.View == "get" || o.View == "scan") && o.Arg == "" {
		return fmt.Errorf("%s needs a %s: %w", o.View, map[string]string{"get": "KEY", "scan": "PREFIX"}[o.View], errBadRequest)
	}
	return nil
}

// The views' results: what --json prints, and what the node's admin endpoint serves.
type (
	prefixesView struct {
		Dir      string                `json:"dir"`
		Kind     string                `json:"kind"`
		Prefixes []inspect.PrefixStats `json:"prefixes"`
	}
	scanView struct {
		Prefix  string           `json:"prefix"`
		Records []inspect.Record `json:"records"`
		More    bool             `json:"more"`
	}
	auditView struct {
		Records []inspect.Record `json:"records"`
	}
)

// storeView computes one view: *inspect.Summary, prefixesView, inspect.Record (get), scanView or
// auditView.
func storeView(in *inspect.Inspector, o StoreInspectOptions) (any, error) {
	switch o.View {
	case "", "summary":
		s, err := in.Summary()
		if err != nil {
			return nil, err
		}
		if hint := spoolHint(s.Dir, in.Kind()); hint != "" {
			s.Add("spool", hint)
		}
		return s, nil
	case "prefixes":
		return prefixesView{Dir: in.Dir(), Kind: in.Kind(), Prefixes: in.Prefixes()}, nil
	case "get":
		return in.Get(o.Arg)
	case "scan":
		rs, more, err := in.Scan(o.Arg, o.Limit)
		if err != nil {
			return nil, err
		}
		return scanView{Prefix: o.Arg, Records: nonNil(rs), More: more}, nil
	case "audit":
		rs, err := in.Audit(o.Tail)
		if err != nil {
			return nil, err
		}
		return auditView{Records: nonNil(rs)}, nil
	}
	return nil, fmt.Errorf("unknown view %q: %w", o.View, errBadRequest)
}

// writeView writes a view's result as JSON (o.JSON) or for people. source, when set, says where it was read
// (the running node's admin endpoint).
func writeView(out io.Writer, o StoreInspectOptions, v any, source string) error {
	if o.JSON {
		return inspect.WriteJSON(out, v)
	}
	if source != "" {
		if s, ok := v.(*inspect.Summary); ok {
			s.Add("read from", source)
		} else {
			fmt.Fprintf(out, "# read from %s\n", source)
		}
	}
	switch v := v.(type) {
	case *inspect.Summary:
		return inspect.WriteSummary(out, v)
	case prefixesView:
		fmt.Fprintf(out, "%s store at %s\n\n", v.Kind, v.Dir)
		return inspect.WritePrefixes(out, v.Prefixes)
	case inspect.Record:
		return inspect.WriteRecords(out, []inspect.Record{v}, false)
	case scanView:
		return inspect.WriteRecords(out, v.Records, v.More)
	case auditView:
		return inspect.WriteRecords(out, v.Records, false)
	}
	return fmt.Errorf("no rendering for %T", v)
}

// inspectRunningNode fetches the view from the running node's admin endpoint and writes it as a local
// inspection would.
func inspectRunningNode(ctx context.Context, c adminClient, o StoreInspectOptions, out io.Writer) error {
	kind, err := c.storeKindAt(ctx, o.Dir)
	if err != nil {
		return err
	}
	q := url.Values{}
	switch o.View {
	case "get":
		q.Set("key", o.Arg)
	case "scan":
		q.Set("prefix", o.Arg)
		q.Set("limit", strconv.Itoa(o.Limit))
	case "audit":
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	path := "/v1/stores/" + kind + "/" + o.View
	var v any
	switch o.View {
	case "summary":
		v, err = fetchView[*inspect.Summary](ctx, c, path, q)
	case "prefixes":
		v, err = fetchView[prefixesView](ctx, c, path, q)
	case "get":
		v, err = fetchView[inspect.Record](ctx, c, path, q)
	case "scan":
		v, err = fetchView[scanView](ctx, c, path, q)
	default:
		v, err = fetchView[auditView](ctx, c, path, q)
	}
	if err != nil {
		return err
	}
	return writeView(out, o, v, "the running node's admin endpoint "+c.url+" (a consistent snapshot of the live store)")
}

func fetchView[T any](ctx context.Context, c adminClient, path string, q url.Values) (T, error) {
	var v T
	err := c.get(ctx, path, q, &v)
	return v, err
}

func nonNil(rs []inspect.Record) []inspect.Record {
	if rs == nil {
		return []inspect.Record{}
	}
	return rs
}

// spoolHint points from a node store to the spool beside it, which is a store of its own.
func spoolHint(dir, kind string) string {
	if kind != "node" {
		return ""
	}
	sd := filepath.Join(dir, spool.DirName)
	if _, err := os.Stat(filepath.Join(sd, "MANIFEST")); err != nil {
		return ""
	}
	return "a store of its own at " + sd + " (inspect it with --dir " + sd + ")"
}
