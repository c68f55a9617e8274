package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteJSON writes v as indented JSON (the --json form of every view).
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteSummary renders a summary for people.
func WriteSummary(w io.Writer, s *Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	line("store", s.Kind+": "+s.Doc)
	line("dir", s.Dir)
	if s.Recovered {
		line("note", "read from a recovered private copy; the directory itself was not changed")
	}
	line("keys", fmt.Sprintf("%d (%s)", s.Keys, HumanBytes(s.Bytes)))
	if s.SeqHighWaterMark != nil {
		line("seq high-water mark", *s.SeqHighWaterMark)
	}
	if s.LeaseEpoch != nil {
		line("lease epoch", *s.LeaseEpoch)
	}
	if s.OwnedDevices != nil {
		line("owned devices", *s.OwnedDevices)
	}
	if s.SpoolDepth != nil {
		items := ""
		if s.SpoolItems != nil {
			items = fmt.Sprintf(", %d items", *s.SpoolItems)
		}
		line("spool depth", fmt.Sprintf("%d batches%s", *s.SpoolDepth, items))
	}
	if s.OldestEntryAge != nil {
		line("oldest entry", (time.Duration(*s.OldestEntryAge*float64(time.Second))).Round(time.Second).String()+" old")
	}
	for _, f := range s.Facts {
		line(f.Name, f.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return WritePrefixes(w, s.Prefixes)
}

// WritePrefixes renders the prefixes view as a table.
func WritePrefixes(w io.Writer, ps []PrefixStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PREFIX\tNAME\tKEYS\tKEY BYTES\tVALUE BYTES\tTYPE\t")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t\n", displayPrefix(p.Prefix), p.Name, p.Keys, HumanBytes(p.KeyBytes), HumanBytes(p.ValueBytes), p.Type)
	}
	return tw.Flush()
}

func displayPrefix(p string) string {
	if p == "" {
		return "-"
	}
	return p
}

// WriteRecords renders records (get, scan, audit) for people: each key, its type and size, then its value as
// indented JSON, or a note and a hex dump.
func WriteRecords(w io.Writer, rs []Record, more bool) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "(no keys)")
		return err
	}
	for i, r := range rs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		typ := r.Type
		if typ == "" {
			typ = "unknown"
		}
		fmt.Fprintf(w, "%s  %s  (%s)\n", r.Key, typ, HumanBytes(int64(r.Size)))
		if r.Note != "" {
			fmt.Fprintf(w, "note: %s\n", r.Note)
		}
		if len(r.Value) > 0 {
			var buf bytes.Buffer
			if err := json.Indent(&buf, r.Value, "", "  "); err != nil {
				buf.Reset()
				buf.Write(r.Value)
			}
			fmt.Fprintln(w, buf.String())
		}
		if r.Hex != "" {
			fmt.Fprint(w, r.Hex)
		}
	}
	if more {
		fmt.Fprintln(w, "\n… more keys follow (raise --limit)")
	}
	return nil
}

// HumanBytes renders a byte count: 512 B, 3.4 KiB, 12.0 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
