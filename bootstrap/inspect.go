package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// RunStoreInspect opens o.Dir read-only and writes one view to out. The directory is never written.
func RunStoreInspect(ctx context.Context, o StoreInspectOptions, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.View == "" {
		o.View = "summary"
	}
	if !slices.Contains(StoreViews, o.View) {
		return fmt.Errorf("unknown view %q: want one of %s", o.View, strings.Join(StoreViews, ", "))
	}
	if (o.View == "get" || o.View == "scan") && o.Arg == "" {
		return fmt.Errorf("%s needs a %s", o.View, map[string]string{"get": "KEY", "scan": "PREFIX"}[o.View])
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
	if err != nil {
		return err
	}
	defer in.Close()

	switch o.View {
	case "summary":
		s, err := in.Summary()
		if err != nil {
			return err
		}
		if hint := spoolHint(o.Dir, in.Kind()); hint != "" {
			s.Add("spool", hint)
		}
		if o.JSON {
			return inspect.WriteJSON(out, s)
		}
		return inspect.WriteSummary(out, s)
	case "prefixes":
		ps := in.Prefixes()
		if o.JSON {
			return inspect.WriteJSON(out, struct {
				Dir      string                `json:"dir"`
				Kind     string                `json:"kind"`
				Prefixes []inspect.PrefixStats `json:"prefixes"`
			}{o.Dir, in.Kind(), ps})
		}
		fmt.Fprintf(out, "%s store at %s\n\n", in.Kind(), o.Dir)
		return inspect.WritePrefixes(out, ps)
	case "get":
		r, err := in.Get(o.Arg)
		if err != nil {
			return err
		}
		if o.JSON {
			return inspect.WriteJSON(out, r)
		}
		return inspect.WriteRecords(out, []inspect.Record{r}, false)
	case "scan":
		rs, more, err := in.Scan(o.Arg, o.Limit)
		if err != nil {
			return err
		}
		if o.JSON {
			return inspect.WriteJSON(out, struct {
				Prefix  string           `json:"prefix"`
				Records []inspect.Record `json:"records"`
				More    bool             `json:"more"`
			}{o.Arg, nonNil(rs), more})
		}
		return inspect.WriteRecords(out, rs, more)
	default: // audit
		rs, err := in.Audit(o.Tail)
		if err != nil {
			return err
		}
		if o.JSON {
			return inspect.WriteJSON(out, struct {
				Records []inspect.Record `json:"records"`
			}{nonNil(rs)})
		}
		return inspect.WriteRecords(out, rs, false)
	}
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
