package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one suite measured.
type Result struct {
	// Name is the suite's name.
	Name string
	// Params are the settings the figures depend on, in the order a reader wants them.
	Params []KV
	// Metrics are the figures, units in their names (…_ms, …_mb, …_per_s), in a reading order.
	Metrics []Metric
	// Notes say what a figure includes or why one is missing.
	Notes []string
}

// KV is one parameter.
type KV struct {
	Name  string
	Value any
}

// Metric is one figure.
type Metric struct {
	Name  string
	Value float64
}

func (r *Result) param(name string, v any)      { r.Params = append(r.Params, KV{name, v}) }
func (r *Result) metric(name string, v float64) { r.Metrics = append(r.Metrics, Metric{name, v}) }
func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Metric returns the named figure, false when absent.
func (r Result) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// MarshalJSON writes {"name", "params":{…}, "metrics":{…}, "notes":[…]}, keeping the reading order.
func (r Result) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	name, _ := json.Marshal(r.Name)
	b.WriteString(`{"name":`)
	b.Write(name)
	b.WriteString(`,"params":{`)
	for i, p := range r.Params {
		if err := writeMember(&b, i, p.Name, p.Value); err != nil {
			return nil, err
		}
	}
	b.WriteString(`},"metrics":{`)
	for i, m := range r.Metrics {
		v := any(m.Value)
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			v = nil
		}
		if err := writeMember(&b, i, m.Name, v); err != nil {
			return nil, err
		}
	}
	b.WriteString(`}`)
	if len(r.Notes) > 0 {
		notes, _ := json.Marshal(r.Notes)
		b.WriteString(`,"notes":`)
		b.Write(notes)
	}
	b.WriteString(`}`)
	return b.Bytes(), nil
}

func writeMember(b *bytes.Buffer, i int, name string, v any) error {
	if i > 0 {
		b.WriteByte(',')
	}
	k, _ := json.Marshal(name)
	if d, ok := v.(time.Duration); ok {
		v = d.String()
	}
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.Write(k)
	b.WriteByte(':')
	b.Write(val)
	return nil
}

// Report is the JSON file Run writes.
type Report struct {
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	Suites  []Result  `json:"suites"`
}

// writeJSON writes the report atomically (a temporary file renamed into place).
func (rep Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// printTable writes one suite's result as aligned text.
func printTable(out io.Writer, r Result) {
	fmt.Fprintf(out, "\n== %s ==\n", r.Name)
	params := make([]string, 0, len(r.Params))
	for _, p := range r.Params {
		params = append(params, fmt.Sprintf("%s=%v", p.Name, p.Value))
	}
	fmt.Fprintf(out, "%s\n", strings.Join(params, " "))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t\n", m.Name, formatValue(m.Value))
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
}

// formatValue prints integers without decimals and other values with three significant decimals.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
