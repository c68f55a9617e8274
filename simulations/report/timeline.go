package report

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"
)

// Span is a stretch of time on a row: a node alive, its link up, a fault active, a lease held.
type Span struct {
	Row  string    `json:"row"`
	Kind string    `json:"kind"` // alive, link, fault, lease
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Label is drawn inside the span (a fault's kind, a lease's epoch).
	Label string `json:"label,omitempty"`
	// Epoch is a lease span's epoch.
	Epoch uint64 `json:"epoch,omitempty"`
}

// Mark is an instant on a row: a miner write (Row the miner, Writer the node).
type Mark struct {
	Row    string    `json:"row"`
	At     time.Time `json:"at"`
	Writer string    `json:"writer"`
	Epoch  uint64    `json:"epoch,omitempty"`
	Label  string    `json:"label,omitempty"`
	Bad    bool      `json:"bad,omitempty"` // part of a violation
}

// Timeline is what one trial's SVG draws.
type Timeline struct {
	Title      string    `json:"title"`
	Start, End time.Time `json:"-"`
	// Nodes are the node rows (alive, link, lease spans), Miners the miner rows (writes), in order.
	Nodes  []string `json:"nodes"`
	Miners []string `json:"miners"`
	Spans  []Span   `json:"spans"`
	Marks  []Mark   `json:"marks"`
}

// palette colours writers, in node order.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

// WriteSVG draws t: a time axis in seconds from Start; per node a row with its lifetime (grey), link
// (green), lease tenures (blue, labelled with the epoch) and the faults that hit it (red); a row for the
// cloud's faults; per miner a row of writes, one tick per write coloured by the writing node (a violation's
// writes outlined in black).
func WriteSVG(w io.Writer, t *Timeline) error {
	const left, right, top, rowH, axisH = 170.0, 20.0, 40.0, 22.0, 30.0
	width := 1200.0
	rows := append([]string{"cloud"}, t.Nodes...)
	rows = append(rows, t.Miners...)
	height := top + float64(len(rows))*rowH + axisH + 40
	span := t.End.Sub(t.Start).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(at time.Time) float64 {
		s := at.Sub(t.Start).Seconds()
		return left + (width-left-right)*min(max(s, 0), span)/span
	}
	rowY := map[string]float64{}
	for i, r := range rows {
		rowY[r] = top + float64(i)*rowH
	}
	color := map[string]string{}
	for i, n := range t.Nodes {
		color[n] = palette[i%len(palette)]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="monospace" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">%s</text>`+"\n", html.EscapeString(t.Title))
	for _, r := range rows {
		y := rowY[r]
		fmt.Fprintf(&b, `<text x="10" y="%.1f">%s</text>`+"\n", y+14, html.EscapeString(r))
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", left, width-right, y+rowH, y+rowH)
	}
	// axis
	axisY := top + float64(len(rows))*rowH + 5
	step := niceStep(span)
	for s := 0.0; s <= span+1e-9; s += step {
		xx := left + (width-left-right)*s/span
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.1f" stroke="#ccc"/>`+"\n", xx, xx, top, axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%gs</text>`+"\n", xx, axisY+14, s)
	}
	band := map[string][2]float64{"alive": {2, 6}, "link": {8, 4}, "lease": {12, 8}, "fault": {2, 18}}
	fill := map[string]string{"alive": "#bbb", "link": "#2ca02c", "lease": "#1f77b4", "fault": "#d62728"}
	spans := slices.Clone(t.Spans)
	slices.SortStableFunc(spans, func(a, c Span) int { // faults under everything
		if (a.Kind == "fault") != (c.Kind == "fault") {
			if a.Kind == "fault" {
				return -1
			}
			return 1
		}
		return 0
	})
	for _, s := range spans {
		y, ok := rowY[s.Row]
		if !ok {
			continue
		}
		bd := band[s.Kind]
		op := "1"
		if s.Kind == "fault" {
			op = "0.25"
		}
		x0, x1 := x(s.From), x(s.To)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s" fill-opacity="%s"><title>%s %s %s–%s</title></rect>`+"\n",
			x0, y+bd[0], max(x1-x0, 1), bd[1], fill[s.Kind], op, html.EscapeString(s.Row), html.EscapeString(s.Kind+" "+s.Label),
			offset(t.Start, s.From), offset(t.Start, s.To))
		if s.Label != "" && x1-x0 > 30 && (s.Kind == "lease" || s.Kind == "fault") {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9">%s</text>`+"\n", x0+2, y+bd[0]+bd[1]-1, html.EscapeString(s.Label))
		}
	}
	for _, m := range t.Marks {
		y, ok := rowY[m.Row]
		if !ok {
			continue
		}
		c := color[m.Writer]
		if c == "" {
			c = "#000"
		}
		stroke := ""
		if m.Bad {
			stroke = ` stroke="black" stroke-width="1.5"`
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="3" height="14" fill="%s"%s><title>%s %s by %s epoch %d %s</title></rect>`+"\n",
			x(m.At)-1, y+3, c, stroke, html.EscapeString(m.Row), offset(t.Start, m.At), html.EscapeString(m.Writer), m.Epoch, html.EscapeString(m.Label))
	}
	// legend
	ly := axisY + 28
	lx := left
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">writes by %s</text>`+"\n", lx, ly-9, color[n], lx+14, ly, html.EscapeString(n))
		lx += 150
	}
	for _, k := range []string{"alive", "link", "lease", "fault"} {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, ly-9, fill[k], lx+14, ly, k)
		lx += 70
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: write SVG: %w", err)
	}
	return nil
}

func offset(start, at time.Time) string { return fmt.Sprintf("+%.3fs", at.Sub(start).Seconds()) }

// niceStep picks an axis step giving 5–15 ticks.
func niceStep(span float64) float64 {
	for _, s := range []float64{0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if span/s <= 15 {
			return s
		}
	}
	return 600
}
