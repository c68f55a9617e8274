package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
)

// kill -9 of a real node process while it spools (the cloud is down) and while it replays: the server, the
// simulated site and the node run as processes of the built binary; the server journals every batch it
// receives and every ack it sends (--debug-ingest-log), and the test checks the journal against what the
// node's spool held when it was killed (read from a recovered copy with `store inspect --recover-copy`):
//
//   - nothing the cloud acknowledged is applied twice (its dedup by batch_seq), and per miner the samples
//     the cloud took arrive in strictly increasing observed time (no sample twice, none out of order);
//   - every sample the node's spool held at the kill reaches the cloud after the restarts, exactly once;
//   - the outage is covered: no gap in a miner's samples while the cloud was down and the node alive;
//   - the seq high-water mark and the audit log come back whole;
//   - meanwhile `store inspect` reads the restarted node's locked store through its admin endpoint, and a
//     backup of the running node restores into an empty directory with its mark.

// crashSite is split mode as processes: minersim, server (journaling), node.
type crashSite struct {
	t                        *testing.T
	bin, dir                 string
	sim, srv, node           *proc
	srvArgs, nodeArgs        []string
	a                        api
	nodeID, gw, httpAddr     string
	nodeDir, srvDir, journal string
	miners                   []string
}

type crashOpts struct {
	miners     int
	poll       time.Duration
	replayRate int
}

func crashBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hashfleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startCrashSite(t *testing.T, o crashOpts) *crashSite {
	t.Helper()
	dir := t.TempDir()
	s := &crashSite{t: t, bin: crashBinary(t), dir: dir, nodeDir: filepath.Join(dir, "node"), srvDir: filepath.Join(dir, "server"),
		journal: filepath.Join(dir, "ingest.jsonl")}
	devices := filepath.Join(dir, "devices.json")
	s.sim = start(t, s.bin, "minersim", "minersim", "--miners", strconv.Itoa(o.miners), "--devices-out", devices)
	s.sim.await(`device list written to`, 10*time.Second)
	waitFor(t, 10*time.Second, "the device file", func() bool { _, err := os.Stat(devices); return err == nil })

	s.srvArgs = []string{"server", "--data-dir", s.srvDir, "--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0",
		"--admin-token", token, "--log-level", "warn", "--debug-ingest-log", s.journal, "--metrics-listen", "127.0.0.1:0"}
	s.srv = start(t, s.bin, "server", s.srvArgs...)
	httpURL := s.srv.await(`API and UI (http://[0-9.:]+)/`, 15*time.Second)
	s.gw = s.srv.await(`gateway\s+([0-9.:]+) \(TLS`, 5*time.Second)
	caFP := s.srv.await(`CA fingerprint (SHA256:[0-9a-f]+)`, 5*time.Second)
	s.httpAddr = strings.TrimPrefix(httpURL, "http://")
	// Restarts reuse the addresses, as a restarted server would.
	s.srvArgs = []string{"server", "--data-dir", s.srvDir, "--listen", s.httpAddr, "--gateway-listen", s.gw,
		"--admin-token", token, "--log-level", "warn", "--debug-ingest-log", s.journal, "--metrics-listen", "127.0.0.1:0"}
	s.a = api{t: t, base: httpURL}

	var code struct {
		Code string `json:"code"`
	}
	if st := s.a.do("POST", "/api/v1/enrollment-codes", map[string]any{"site": "crash"}, &code); st != 201 {
		t.Fatalf("mint code: %d", st)
	}
	enroll := start(t, s.bin, "node enroll", "node", "enroll", "--server", s.gw, "--code", code.Code, "--data-dir", s.nodeDir,
		"--ca-fingerprint", caFP, "--poll", "100ms")
	fp := enroll.await(`node identity fingerprint: (SHA256:[0-9a-f-]+)`, 10*time.Second)
	s.nodeID = enroll.await(`enrolled as node (n[0-9a-f]+)`, 10*time.Second)
	if st := s.a.do("POST", "/api/v1/nodes/"+s.nodeID+"/confirm", map[string]string{"fingerprint": fp}, nil); st != 200 {
		t.Fatalf("confirm: %d", st)
	}
	enroll.wait(10 * time.Second)

	s.nodeArgs = []string{"node", "run", "--data-dir", s.nodeDir, "--devices", devices, "--poll-interval", o.poll.String(),
		"--status-interval", "100ms", "--backoff-max", "500ms", "--log-level", "info", "--metrics-listen", "127.0.0.1:0"}
	if o.replayRate > 0 {
		s.nodeArgs = append(s.nodeArgs, "--replay-rate", strconv.Itoa(o.replayRate))
	}
	s.node = start(t, s.bin, "node run", s.nodeArgs...)
	waitFor(t, 15*time.Second, "node connected", func() bool { return s.a.nodeConnected(s.nodeID) })
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	waitFor(t, 10*time.Second, "devices pending", func() bool {
		return s.a.do("GET", "/api/v1/devices/pending", nil, &pend) == 200 && len(pend.Devices) == o.miners
	})
	for _, d := range pend.Devices {
		s.miners = append(s.miners, d.MinerID)
	}
	sort.Strings(s.miners)
	if st := s.a.do("POST", "/api/v1/nodes/"+s.nodeID+"/devices", map[string]any{"miner_ids": s.miners}, nil); st != 200 {
		t.Fatalf("pair: %d", st)
	}
	waitFor(t, 15*time.Second, "every miner mining", func() bool {
		var page struct {
			Items []struct{ State string } `json:"items"`
		}
		if s.a.do("GET", "/api/v1/miners", nil, &page) != 200 || len(page.Items) != o.miners {
			return false
		}
		for _, m := range page.Items {
			if m.State != "mining" {
				return false
			}
		}
		return true
	})
	return s
}

// nodeStatus is what the test reads of status.json.
type nodeStatus struct {
	Running bool   `json:"running"`
	PID     int    `json:"pid"`
	LinkUp  bool   `json:"link_up"`
	SeqMark uint64 `json:"seq_mark"`
	Spool   *struct {
		Batches          int `json:"batches"`
		TelemetryBatches int `json:"telemetry_batches"`
		Samples          int `json:"samples"`
		Replay           *struct {
			Acked          int64   `json:"acked"`
			Total          int64   `json:"total"`
			ItemsPerSecond float64 `json:"items_per_second"`
		} `json:"replay"`
	} `json:"spool"`
}

// status reads the status file the running node process (this one, by PID) wrote; ok is false before it did.
func (s *crashSite) status() (nodeStatus, bool) {
	var st nodeStatus
	b, err := os.ReadFile(filepath.Join(s.nodeDir, "status.json"))
	if err != nil || json.Unmarshal(b, &st) != nil || st.PID != s.node.cmd.Process.Pid || st.Spool == nil {
		return st, false
	}
	return st, true
}

func kill9(t *testing.T, p *proc) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(5 * time.Second)
	return at
}

func stopGracefully(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(20 * time.Second)
}

// inspectJSON runs `hashfleet store inspect ... --json` and decodes its output.
func (s *crashSite) inspectJSON(out any, args ...string) {
	s.t.Helper()
	b, err := exec.Command(s.bin, append([]string{"store", "inspect", "--json"}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		s.t.Fatalf("store inspect %v: %v\n%s", args, err, stderr)
	}
	if err := json.Unmarshal(b, out); err != nil {
		s.t.Fatalf("store inspect %v: %v\n%s", args, err, b)
	}
}

type sampleKey struct {
	miner string
	at    int64
}

// spooled reads the telemetry a killed node's spool holds, from a recovered copy (the spool is not written).
func (s *crashSite) spooled() (map[sampleKey]bool, time.Duration) {
	s.t.Helper()
	began := time.Now()
	var v struct {
		Records []struct {
			Value struct {
				Samples []struct {
					MinerID    string `json:"miner_id"`
					ObservedAt string `json:"observed_at_unix_ms"`
				} `json:"samples"`
			} `json:"value"`
		} `json:"records"`
		More bool `json:"more"`
	}
	s.inspectJSON(&v, "--dir", filepath.Join(s.nodeDir, "store", "spool"), "--recover-copy", "--kind", "spool", "scan", "telemetry", "--limit", "1000000")
	took := time.Since(began)
	out := map[sampleKey]bool{}
	for _, r := range v.Records {
		for _, x := range r.Value.Samples {
			at, _ := strconv.ParseInt(x.ObservedAt, 10, 64)
			out[sampleKey{x.MinerID, at}] = true
		}
	}
	return out, took
}

// markAndAudit reads a killed node's seq mark and audit log from a recovered copy of its store.
func (s *crashSite) markAndAudit() (uint64, int) {
	s.t.Helper()
	dir := filepath.Join(s.nodeDir, "store")
	var mark struct {
		Value struct {
			Seq string `json:"seq"`
		} `json:"value"`
	}
	s.inspectJSON(&mark, "--dir", dir, "--recover-copy", "--kind", "node", "get", "seq/mark")
	var audit struct {
		Records []json.RawMessage `json:"records"`
	}
	s.inspectJSON(&audit, "--dir", dir, "--recover-copy", "--kind", "node", "audit", "--tail", "1000")
	m, _ := strconv.ParseUint(mark.Value.Seq, 10, 64)
	return m, len(audit.Records)
}

func (s *crashSite) restartNode() (*proc, time.Time) {
	at := time.Now()
	s.node = start(s.t, s.bin, "node run (restarted)", s.nodeArgs...)
	return s.node, at
}

func (s *crashSite) restartServer() time.Time {
	at := time.Now()
	s.srv = start(s.t, s.bin, "server (restarted)", s.srvArgs...)
	s.srv.await(`CA fingerprint (SHA256:[0-9a-f]+)`, 15*time.Second)
	return at
}

// journal is the server's ingest journal, replayed as the cloud saw it.
type journal struct {
	// applied is, per miner, the observed times of the samples in batches the cloud acked as applied, in
	// the order it applied them; appliedAt when each was applied.
	applied   map[string][]int64
	appliedAt map[sampleKey]time.Time
	// seqs counts the acks that applied each telemetry batch_seq (must be 1); duplicates counts acks that
	// said "applied before".
	seqs          map[uint64]int
	duplicates    int
	maxSeq        uint64
	eventsApplied map[string]int // event id → times applied
}

func (s *crashSite) readJournal() journal {
	s.t.Helper()
	f, err := os.Open(s.journal)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	j, problems := parseJournal(f)
	for _, p := range problems {
		s.t.Error("journal: " + p)
	}
	return j
}

// parseJournal replays the journal as the cloud saw it, with what it finds wrong on the way.
func parseJournal(r io.Reader) (journal, []string) {
	j := journal{applied: map[string][]int64{}, appliedAt: map[sampleKey]time.Time{}, seqs: map[uint64]int{}, eventsApplied: map[string]int{}}
	var problems []string
	batches := map[string]map[uint64]bootstrap.IngestJournalLine{"telemetry": {}, "events": {}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l bootstrap.IngestJournalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line cut by the server's kill -9
		}
		switch l.T {
		case "batch":
			batches[l.Stream][l.Seq] = l
		case "ack":
			b, ok := batches[l.Stream][l.Seq]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s ack for batch %d the cloud never received", l.Stream, l.Seq))
			case l.Duplicate:
				j.duplicates++
				if l.Stream == "telemetry" && j.seqs[l.Seq] == 0 {
					problems = append(problems, fmt.Sprintf("telemetry batch %d acked as a duplicate but never applied", l.Seq))
				}
			case l.Code != "RESULT_CODE_SUCCEEDED":
			case l.Stream == "telemetry":
				j.seqs[l.Seq]++
				j.maxSeq = max(j.maxSeq, l.Seq)
				for _, x := range b.Samples {
					m, at := x[0].(string), int64(x[1].(float64))
					j.applied[m] = append(j.applied[m], at)
					j.appliedAt[sampleKey{m, at}] = l.At
				}
			default:
				for _, e := range b.Events {
					j.eventsApplied[e[1].(string)]++
				}
			}
		}
	}
	return j, problems
}

// check asserts the invariants every run must keep.
func (s *crashSite) check(j journal, spooled map[sampleKey]bool) {
	s.t.Helper()
	for _, p := range checkJournal(j, spooled) {
		s.t.Error(p)
	}
}

// checkJournal: no telemetry batch or event applied twice, each miner's samples applied in strictly
// increasing observed time, every sample of the killed spool applied.
func checkJournal(j journal, spooled map[sampleKey]bool) []string {
	var problems []string
	for seq, n := range j.seqs {
		if n != 1 {
			problems = append(problems, fmt.Sprintf("telemetry batch %d applied %d times", seq, n))
		}
	}
	for m, ats := range j.applied {
		for i := 1; i < len(ats); i++ {
			if ats[i] <= ats[i-1] {
				problems = append(problems, fmt.Sprintf("miner %s: sample %d applied after %d (duplicate or out of order)", m, ats[i], ats[i-1]))
				break
			}
		}
	}
	missing := 0
	for k := range spooled {
		if _, ok := j.appliedAt[k]; !ok {
			missing++
		}
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d of the %d samples the killed node's spool held never reached the cloud", missing, len(spooled)))
	}
	for id, n := range j.eventsApplied {
		if n != 1 {
			problems = append(problems, fmt.Sprintf("event %s applied %d times", id, n))
		}
	}
	return problems
}

// coverage asserts that every miner has samples at most maxGap apart within [from, to].
func (s *crashSite) coverage(j journal, what string, from, to time.Time, maxGap time.Duration) {
	s.t.Helper()
	for _, p := range coverageGaps(j, s.miners, from, to, maxGap) {
		s.t.Errorf("%s: %s", what, p)
	}
}

func coverageGaps(j journal, miners []string, from, to time.Time, maxGap time.Duration) []string {
	var problems []string
	for _, m := range miners {
		var in []int64
		for _, at := range j.applied[m] {
			if at >= from.UnixMilli() && at <= to.UnixMilli() {
				in = append(in, at)
			}
		}
		prev := from.UnixMilli()
		for _, at := range append(in, to.UnixMilli()) {
			if gap := time.Duration(at-prev) * time.Millisecond; gap > maxGap {
				problems = append(problems, fmt.Sprintf("miner %s has no sample for %s (from %s)", m, gap, time.UnixMilli(prev).Format("15:04:05.000")))
				break
			}
			prev = at
		}
	}
	return problems
}

// The checks themselves find what they must: a journal with a batch applied twice, a sample out of order,
// a spooled sample that never arrived, an event applied twice and a hole in a miner's samples.
func TestCrashJournalChecks(t *testing.T) {
	t0 := time.UnixMilli(1_764_324_000_000)
	line := func(l bootstrap.IngestJournalLine) string { b, _ := json.Marshal(l); return string(b) }
	batch := func(seq uint64, samples ...[2]any) string {
		return line(bootstrap.IngestJournalLine{At: t0, Stream: "telemetry", T: "batch", Seq: seq, Samples: samples})
	}
	ack := func(stream string, seq uint64, dup bool) string {
		return line(bootstrap.IngestJournalLine{At: t0, Stream: stream, T: "ack", Seq: seq, Code: "RESULT_CODE_SUCCEEDED", Duplicate: dup})
	}
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	good := strings.Join([]string{
		batch(1, [2]any{"m", ms(0)}, [2]any{"m", ms(200 * time.Millisecond)}), ack("telemetry", 1, false),
		batch(2, [2]any{"m", ms(400 * time.Millisecond)}), ack("telemetry", 2, false),
		batch(2, [2]any{"m", ms(400 * time.Millisecond)}), ack("telemetry", 2, true), // resent after a crash, dropped
		line(bootstrap.IngestJournalLine{Stream: "events", T: "batch", Seq: 1, Events: [][2]any{{"EVENT_KIND_COMMAND_AUDIT", "a1"}}}),
		ack("events", 1, false), `{"at":"cut by a kill`,
	}, "\n")
	j, problems := parseJournal(strings.NewReader(good))
	spooled := map[sampleKey]bool{{"m", ms(400 * time.Millisecond)}: true}
	if len(problems) != 0 || j.duplicates != 1 || j.maxSeq != 2 || len(checkJournal(j, spooled)) != 0 ||
		len(coverageGaps(j, []string{"m"}, t0, t0.Add(time.Second), time.Second)) != 0 {
		t.Fatalf("a good journal: %v %+v %v", problems, j, checkJournal(j, spooled))
	}
	bad := strings.Join([]string{
		batch(1, [2]any{"m", ms(0)}), ack("telemetry", 1, false),
		batch(1, [2]any{"m", ms(0)}), ack("telemetry", 1, false), // applied twice
		batch(3, [2]any{"m", ms(5 * time.Second)}), ack("telemetry", 3, false),
		batch(4, [2]any{"m", ms(4 * time.Second)}), ack("telemetry", 4, false), // out of order
		ack("telemetry", 9, true), // never received
		line(bootstrap.IngestJournalLine{Stream: "events", T: "batch", Seq: 1, Events: [][2]any{{"EVENT_KIND_COMMAND_AUDIT", "a1"}}}),
		ack("events", 1, false), ack("events", 1, false), // applied twice
	}, "\n")
	j, problems = parseJournal(strings.NewReader(bad))
	spooled[sampleKey{"m", ms(7 * time.Second)}] = true // never arrived
	all := append(problems, checkJournal(j, spooled)...)
	all = append(all, coverageGaps(j, []string{"m"}, t0, t0.Add(6*time.Second), 2*time.Second)...)
	for _, want := range []string{"never received", "batch 1 applied 2 times", "out of order", "never reached the cloud",
		"event a1 applied 2 times", "no sample for"} {
		found := false
		for _, p := range all {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("the checks missed %q: %v", want, all)
		}
	}
}

// serverMark reads the cloud's dedup mark for the node's telemetry from its store (stopped).
func (s *crashSite) serverMark() uint64 {
	var v struct {
		Value struct {
			Seq string `json:"seq"`
		} `json:"value"`
	}
	s.inspectJSON(&v, "--dir", filepath.Join(s.srvDir, "store"), "get", "mark/telemetry/"+s.nodeID)
	n, _ := strconv.ParseUint(v.Value.Seq, 10, 64)
	return n
}

func (s *crashSite) command(action, miner string) {
	s.t.Helper()
	var cmd struct {
		CommandID string `json:"command_id"`
	}
	if st := s.a.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{miner}, "action": action}, &cmd); st != 202 {
		s.t.Fatalf("command: %d", st)
	}
	waitFor(s.t, 15*time.Second, "command succeeded", func() bool {
		var v struct{ Status string }
		return s.a.do("GET", "/api/v1/commands/"+cmd.CommandID, nil, &v) == 200 && v.Status == "succeeded"
	})
}

// finish stops node and server gracefully, then checks the journal and the server's store agree.
func (s *crashSite) finish(spooled map[sampleKey]bool) journal {
	s.t.Helper()
	stopGracefully(s.t, s.node)
	stopGracefully(s.t, s.srv)
	j := s.readJournal()
	s.check(j, spooled)
	if m := s.serverMark(); m != j.maxSeq {
		s.t.Errorf("the server store's telemetry mark for the node is %d; the journal's highest applied batch is %d", m, j.maxSeq)
	}
	return j
}

// drained waits until every sample in want was applied, then returns when the last one was.
func (s *crashSite) drained(want map[sampleKey]bool, timeout time.Duration) time.Time {
	s.t.Helper()
	var last time.Time
	waitFor(s.t, timeout, "every spooled sample applied by the cloud", func() bool {
		j := s.readJournal()
		last = time.Time{}
		for k := range want {
			at, ok := j.appliedAt[k]
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	return last
}

func TestKill9NodeWhileSpooling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	s := startCrashSite(t, crashOpts{miners: 3, poll: 200 * time.Millisecond})
	s.command("stop", s.miners[1]) // a seq mark of 1 and its audit record
	time.Sleep(time.Second)

	// The cloud goes away: the node spools.
	srvKilled := kill9(t, s.srv)
	waitFor(t, 10*time.Second, "the node spooling 4 telemetry batches with the link down", func() bool {
		st, ok := s.status()
		return ok && !st.LinkUp && st.Spool.TelemetryBatches >= 4
	})
	nodeKilled := kill9(t, s.node)
	spooled, inspectTook := s.spooled()
	if len(spooled) < 4*len(s.miners) {
		t.Fatalf("the killed node's spool holds %d samples", len(spooled))
	}
	mark, audits := s.markAndAudit()
	if mark != 1 || audits < 1 {
		t.Fatalf("after kill -9: seq mark %d, %d audit records; want 1 and at least 1", mark, audits)
	}

	// The node comes back while the cloud is still away: the spool reopens with what it held.
	_, nodeRestarted := s.restartNode()
	waitFor(t, 15*time.Second, "the restarted node's status with its spool", func() bool {
		st, ok := s.status()
		return ok && st.Spool.Samples >= len(spooled) && st.SeqMark == 1
	})
	reopened := time.Since(nodeRestarted)
	// The restarted node holds its store: `store inspect` reads it through the node's admin endpoint.
	var sum struct {
		Kind string `json:"kind"`
		Mark uint64 `json:"seq_high_water_mark"`
	}
	s.inspectJSON(&sum, "--dir", filepath.Join(s.nodeDir, "store"))
	if sum.Kind != "node" || sum.Mark != 1 {
		t.Fatalf("store inspect of the running node's store: %+v", sum)
	}
	// A backup of the running node (through its admin endpoint) keeps the mark.
	archive := filepath.Join(s.dir, "node-backup.tar.gz")
	if out, err := exec.Command(s.bin, "node", "backup", "--data-dir", s.nodeDir, "--out", archive).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "seq high-water mark 1") || !strings.Contains(string(out), "the running node") {
		t.Fatalf("node backup of the running node: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second) // and spools on
	srvRestarted := s.restartServer()
	waitFor(t, 20*time.Second, "node reconnected", func() bool { return s.a.nodeConnected(s.nodeID) })
	reconnected := time.Since(srvRestarted)
	lastSpooled := s.drained(spooled, 30*time.Second)
	s.node.await(`link up: replaying the outbox`, 5*time.Second)
	waitFor(t, 20*time.Second, "the restarted node's backlog drained", func() bool {
		st, ok := s.status()
		return ok && st.LinkUp && st.Spool.Replay == nil
	})
	drainedAt := time.Now()
	time.Sleep(time.Second)

	j := s.finish(spooled)
	out, err := exec.Command(s.bin, "node", "restore", "--data-dir", filepath.Join(s.dir, "restored"), "--in", archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "seq high-water mark  1: the node refuses every command at or below it") {
		t.Fatalf("node restore: %v\n%s", err, out)
	}
	// While the cloud was away and the node alive (the last second before the kill may not have reached the
	// spool: it was in the batcher, not yet acknowledged to the spool), and again after the node's restart.
	s.coverage(j, "first outage", srvKilled.Add(time.Second), nodeKilled.Add(-1500*time.Millisecond), 2*time.Second)
	s.coverage(j, "after the node's restart", nodeRestarted.Add(3*time.Second), drainedAt, 2*time.Second)
	if n := len(j.applied[s.miners[0]]); n == 0 {
		t.Fatal("no telemetry applied at all")
	}
	t.Logf("kill -9 while spooling: %d samples in the spool at the kill (read from a recovered copy in %s); restart → spool reopened and "+
		"status written %s; server restart → node reconnected %s; server restart → every spooled sample applied %s; %d duplicate acks",
		len(spooled), inspectTook.Round(time.Millisecond), reopened.Round(time.Millisecond), reconnected.Round(time.Millisecond),
		lastSpooled.Sub(srvRestarted).Round(time.Millisecond), j.duplicates)
}

func TestKill9NodeWhileReplaying(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	// 3 miners every 200 ms is 15 samples/s live; a replay rate of 30 items/s drains a backlog at ≈15/s, so
	// an outage of a few seconds takes seconds to replay: long enough to kill the node in the middle.
	s := startCrashSite(t, crashOpts{miners: 3, poll: 200 * time.Millisecond, replayRate: 30})
	s.command("stop", s.miners[0])
	time.Sleep(time.Second)

	srvKilled := kill9(t, s.srv)
	waitFor(t, 10*time.Second, "the link down", func() bool { st, ok := s.status(); return ok && !st.LinkUp })
	time.Sleep(6 * time.Second)
	srvRestarted := s.restartServer()
	// Mid-replay: a quarter to three quarters of the backlog acked.
	var at nodeStatus
	waitFor(t, 30*time.Second, "the replay a quarter done", func() bool {
		st, ok := s.status()
		if ok && st.LinkUp && st.Spool.Replay != nil && st.Spool.Replay.Total >= 60 &&
			st.Spool.Replay.Acked*4 >= st.Spool.Replay.Total && st.Spool.Replay.Acked*4 <= 3*st.Spool.Replay.Total {
			at = st
			return true
		}
		return false
	})
	nodeKilled := kill9(t, s.node)
	spooled, inspectTook := s.spooled()
	if len(spooled) == 0 {
		t.Fatal("the spool was empty at the kill: not mid-replay")
	}
	mark, audits := s.markAndAudit()
	if mark != 1 || audits < 1 {
		t.Fatalf("after kill -9: seq mark %d, %d audit records; want 1 and at least 1", mark, audits)
	}
	_, nodeRestarted := s.restartNode()
	waitFor(t, 20*time.Second, "the restarted node connected", func() bool { st, ok := s.status(); return ok && st.LinkUp })
	reconnected := time.Since(nodeRestarted)
	lastSpooled := s.drained(spooled, 40*time.Second)
	waitFor(t, 30*time.Second, "the backlog drained", func() bool {
		st, ok := s.status()
		return ok && st.Spool.Replay == nil
	})
	drainedAt := time.Now()
	time.Sleep(time.Second)

	j := s.finish(spooled)
	s.coverage(j, "the outage", srvKilled.Add(time.Second), srvRestarted, 2*time.Second)
	s.coverage(j, "after the node's restart", nodeRestarted.Add(3*time.Second), drainedAt, 2*time.Second)
	t.Logf("kill -9 while replaying: killed at %d/%d items acked (%.0f items/s); %d samples left in the spool (recovered copy read in %s); "+
		"restart → reconnected %s; restart → every spooled sample applied %s; %d duplicate acks (batches acked by the cloud whose ack "+
		"the node had not yet deleted on disk, resent and dropped by the cloud's dedup); node killed %s after the server's restart",
		at.Spool.Replay.Acked, at.Spool.Replay.Total, at.Spool.Replay.ItemsPerSecond, len(spooled), inspectTook.Round(time.Millisecond),
		reconnected.Round(time.Millisecond), lastSpooled.Sub(nodeRestarted).Round(time.Millisecond), j.duplicates,
		nodeKilled.Sub(srvRestarted).Round(time.Millisecond))
}
