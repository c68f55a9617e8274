package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/hashfleet/hashfleet/simulations/oracle"
	"github.com/hashfleet/hashfleet/simulations/report"
)

// collect builds the oracle history of the trial, checks it and assembles the result.
func (t *trial) collect(wl *workload, at *attacker, lo *localOps, pending int, end time.Time) (result, error) {
	writes := t.writes()
	t.tagEpochs(writes)
	leaseSpans := t.leaseHistory(end)
	wl.mu.Lock()
	issued, acked := slices.Clone(wl.issued), slices.Clone(wl.acked)
	wl.mu.Unlock()
	at.mu.Lock()
	attempts, attemptTok := slices.Clone(at.attempts), at.tokens
	at.mu.Unlock()
	lo.mu.Lock()
	issued = append(issued, lo.issued...)
	local := slices.Clone(lo.local)
	lo.mu.Unlock()
	var audited []string
	if len(local) > 0 {
		// The backfill of a node that just got its link back may still be on its way.
		actx, cancel := context.WithTimeout(context.Background(), t.cfg.FinalWait)
		_ = waitUntil(actx, t.cfg.FinalWait, "local actions audited", func() bool {
			audited = lo.audited(actx)
			return len(oracle.LocalActionsAudited(local, audited)) == 0
		})
		cancel()
	}
	ackedS, storedS, nAcked := t.telemetry()
	t.mu.Lock()
	leaseEvs := slices.Clone(t.leaseEvs)
	t.mu.Unlock()
	h := oracle.History{Writes: writes, Issued: issued, Acked: acked, Attempts: attempts, AckedSamples: ackedS, StoredSamples: storedS,
		LeaseEvents: leaseEvs, LocalActions: local, Audited: audited}
	if t.cfg.Pairs {
		h.FailoverTarget = t.cfg.FailoverTarget
	}
	chk := oracle.Check(h)
	var vs oracle.Violations
	for _, v := range chk.Violations {
		if v.Kind == oracle.KindUnissued && attemptTok[v.CommandID] {
			continue // reported by NoForbiddenExecution
		}
		vs = append(vs, v)
	}
	recs := t.recoveries()
	vs = append(vs, oracle.RecoveryWithin(recs, t.cfg.FailoverTarget)...)

	var r result
	r.violations = vs
	r.attemptKinds = map[string]int{}
	for _, a := range attempts {
		r.attemptKinds[string(a.Kind)]++
	}
	for _, f := range chk.Failovers {
		if f.InControl {
			r.failovers = append(r.failovers, report.Seconds(f.Time()))
		}
	}
	for _, rc := range recs {
		if rc.Up {
			r.recoveries = append(r.recoveries, report.Seconds(rc.Time()))
		}
	}
	c := report.Commands{Issued: len(issued), Local: len(local), Pending: pending, Attempts: len(attempts), MinerWrites: len(writes), TelemetryAcks: nAcked}
	for _, a := range acked {
		switch a.Outcome {
		case oracle.OutcomeAccepted:
			c.Acked++
		case oracle.OutcomeSucceeded:
			c.Succeeded++
		case oracle.OutcomeFailed:
			c.Failed++
		}
	}
	for _, v := range vs {
		switch v.Kind {
		case oracle.KindLost:
			c.Lost++
		case oracle.KindDuplicate:
			c.Duplicated++
		}
	}
	r.commands = c
	r.timeline = t.timeline(writes, vs, end)
	r.timeline.Spans = append(r.timeline.Spans, leaseSpans...)
	return r, nil
}

// writes reads every miner's own write log; the writer is the node that owns the write's source address.
func (t *trial) writes() []oracle.Write {
	byIP := map[string]string{}
	for _, n := range t.nodes() {
		byIP[n.sourceIP] = n.name
	}
	writer := func(remote string) string {
		if n, ok := byIP[ipOf(remote)]; ok {
			return n
		}
		return remote
	}
	var out []oracle.Write
	for _, s := range t.sites {
		if cg := s.fleet.CGMiners(); cg != nil {
			for _, m := range cg.Miners() {
				for _, w := range m.WriteLog() {
					out = append(out, oracle.Write{MinerID: m.ID(), At: w.At, Writer: writer(w.Remote), Op: w.Command,
						CommandID: tokenOf(w.Parameter)})
				}
			}
		}
		if ant := s.fleet.Antminers(); ant != nil {
			for _, m := range ant.API().Miners() {
				for _, w := range m.WriteLog() {
					if _, ok := byIP[ipOf(w.Remote)]; !ok {
						continue // the web CGI applying its own write to the miner's API side, not a second writer
					}
					out = append(out, oracle.Write{MinerID: m.ID(), At: w.At, Writer: writer(w.Remote), Op: w.Command,
						CommandID: tokenOf(w.Parameter)})
				}
			}
			for _, w := range ant.WriteLog() {
				tok := ""
				for _, v := range w.Params {
					if x := tokenOf(v); x != "" {
						tok = x
						break
					}
				}
				out = append(out, oracle.Write{MinerID: w.MinerID, At: w.At, Writer: writer(w.Remote), Op: w.Method + " " + w.Path, CommandID: tok})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// telemetry reads the cloud's ingest journal: every sample of a telemetry batch the cloud acked. For each
// miner the newest acked sample must be what the cloud stores (it keeps the newest sample per miner): a
// cloud that acked a sample and lost it in a restart shows an older last_seen.
func (t *trial) telemetry() (acked, stored []oracle.SampleKey, n int) {
	f, err := os.Open(t.cloud.journal)
	if err != nil {
		return nil, nil, 0
	}
	defer f.Close()
	type line struct {
		Stream  string   `json:"stream"`
		T       string   `json:"t"`
		Node    string   `json:"node"`
		Seq     uint64   `json:"seq"`
		Samples [][2]any `json:"samples"`
		Code    string   `json:"code"`
	}
	last := map[uint64]line{} // telemetry batch by seq, the newest
	newest := map[string]int64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l line
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Stream != "telemetry" {
			continue
		}
		switch l.T {
		case "batch":
			last[l.Seq] = l
		case "ack":
			b, ok := last[l.Seq]
			if !ok || !strings.HasSuffix(l.Code, "SUCCEEDED") {
				continue
			}
			delete(last, l.Seq)
			for _, s := range b.Samples {
				id, _ := s[0].(string)
				ms, _ := s[1].(float64)
				n++
				if int64(ms) > newest[id] {
					newest[id] = int64(ms)
				}
			}
		}
	}
	var page struct {
		Items []struct {
			ID       string     `json:"id"`
			LastSeen *time.Time `json:"last_seen"`
		} `json:"items"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := t.cloud.do(ctx, "GET", "/api/v1/miners?limit=1000", nil, &page); err != nil {
		return nil, nil, n
	}
	seen := map[string]int64{}
	for _, m := range page.Items {
		if m.LastSeen != nil {
			seen[m.ID] = m.LastSeen.UnixMilli()
		}
	}
	for id, ms := range newest {
		k := oracle.SampleKey{MinerID: id, AtUnixMs: ms}
		acked = append(acked, k)
		if seen[id] >= ms {
			stored = append(stored, k)
		}
	}
	return acked, stored, n
}

// recoveries pairs each healed link-breaking fault with the node's next link span.
func (t *trial) recoveries() []oracle.Recovery {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []oracle.Recovery
	for _, h := range t.heals {
		for _, n := range h.nodes {
			r := oracle.Recovery{NodeID: n, Fault: h.fault.String(), HealedAt: h.at}
			for _, s := range t.spans {
				if s.Row != n || s.Kind != "link" {
					continue
				}
				if !s.From.After(h.at) && (s.To.IsZero() || s.To.After(h.at)) {
					r.Up, r.UpAt = true, h.at
					break
				}
				if s.From.After(h.at) {
					r.Up, r.UpAt = true, s.From
					break
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// timeline assembles the trial's drawing.
func (t *trial) timeline(writes []oracle.Write, vs oracle.Violations, end time.Time) *report.Timeline {
	t.mu.Lock()
	spans := slices.Clone(t.spans)
	t.mu.Unlock()
	for i := range spans {
		if spans[i].To.IsZero() {
			spans[i].To = end
		}
	}
	tl := &report.Timeline{Title: "", Start: t.start, End: end, Spans: spans}
	for _, s := range t.sites {
		for _, n := range s.nodes {
			tl.Nodes = append(tl.Nodes, n.name)
		}
		tl.Miners = append(tl.Miners, s.minerIDs()...)
	}
	bad := map[string]bool{}
	for _, v := range vs {
		if v.CommandID != "" {
			bad[v.CommandID] = true
		}
		if v.Kind == oracle.KindOverlap || v.Kind == oracle.KindEpochRegression {
			bad["miner:"+v.MinerID] = true
		}
	}
	for _, w := range writes {
		if w.At.Before(t.start) || w.At.After(end) {
			continue
		}
		tl.Marks = append(tl.Marks, report.Mark{Row: w.MinerID, At: w.At, Writer: w.Writer, Epoch: w.Epoch, Label: w.Op + " " + w.CommandID,
			Bad: (w.CommandID != "" && bad[w.CommandID]) || bad["miner:"+w.MinerID]})
	}
	return tl
}

// tagEpochs gives each miner write of a pair member the lease epoch its node recorded for it: the node's
// write-log entry for that miner whose [start, finish] holds the write (the miner's clock and the nodes'
// are one wall clock in process); else the epoch of the node's latest entry before it.
func (t *trial) tagEpochs(ws []oracle.Write) {
	const slack = 50 * time.Millisecond
	entries := map[string][]writelog.Entry{}
	for _, s := range t.sites {
		if len(s.nodes) != 2 {
			continue
		}
		for _, n := range s.nodes {
			es := n.writes.Entries()
			sort.SliceStable(es, func(i, j int) bool { return es[i].Start.Before(es[j].Start) })
			entries[n.name] = es
		}
	}
	for i := range ws {
		es, ok := entries[ws[i].Writer]
		if !ok {
			continue
		}
		var best *writelog.Entry
		for k := range es {
			e := &es[k]
			if e.Start.After(ws[i].At.Add(slack)) {
				break
			}
			if e.Wrote() && e.Miner == ws[i].MinerID && !ws[i].At.After(e.Finish.Add(slack)) {
				best = e
				break
			}
		}
		if best == nil {
			for k := range es {
				if es[k].Start.After(ws[i].At) {
					break
				}
				if es[k].Wrote() {
					best = &es[k]
				}
			}
		}
		if best != nil {
			ws[i].Epoch = best.Epoch
		}
	}
}

// leaseHistory reads each pair's holder changes from the cloud: grants for the failover oracle, and the
// holders' tenures for the timeline.
func (t *trial) leaseHistory(end time.Time) []report.Span {
	var spans []report.Span
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range t.sites {
		if s.pairID == "" {
			continue
		}
		v, err := s.pairStatus(ctx, t.cloud)
		if err != nil {
			continue
		}
		hist := slices.Clone(v.History)
		sort.SliceStable(hist, func(i, j int) bool { return hist[i].At.Before(hist[j].At) })
		for i, h := range hist {
			n := s.byID(h.To)
			if n == nil {
				continue
			}
			t.mu.Lock()
			t.leaseEvs = append(t.leaseEvs, oracle.LeaseEvent{At: h.At, PairID: s.pairID, NodeID: n.name, Kind: oracle.LeaseGranted,
				Epoch: h.Epoch, Detail: h.Kind})
			t.mu.Unlock()
			to := end
			if i+1 < len(hist) {
				to = hist[i+1].At
			}
			from := h.At
			if from.Before(t.start) {
				from = t.start
			}
			if to.After(from) {
				spans = append(spans, report.Span{Row: n.name, Kind: "lease", From: from, To: to, Epoch: h.Epoch,
					Label: fmt.Sprintf("epoch %d", h.Epoch)})
			}
		}
	}
	return spans
}
