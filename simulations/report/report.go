package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hashfleet/hashfleet/simulations/oracle"
)

// Commands counts the operator commands of a trial (per command and miner).
type Commands struct {
	// Issued: commands the harness gave the API. Acked: the API accepted them. Succeeded, Failed: final
	// outcomes the API reported. Lost, Duplicated: exactly-once violations. Pending: accepted commands that
	// never reached a final state in the trial.
	Issued     int `json:"issued"`
	Acked      int `json:"acked"`
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Pending    int `json:"pending"`
	// Attempts is how many forbidden commands were delivered, Local how many local commands a node
	// accepted while its cloud link was down, MinerWrites how many writes the miners logged.
	Attempts      int `json:"forbidden_attempts"`
	Local         int `json:"local_commands"`
	MinerWrites   int `json:"miner_writes"`
	TelemetryAcks int `json:"telemetry_samples_acked"`
}

// Add sums two counts.
func (c Commands) Add(o Commands) Commands {
	return Commands{Issued: c.Issued + o.Issued, Acked: c.Acked + o.Acked, Succeeded: c.Succeeded + o.Succeeded,
		Failed: c.Failed + o.Failed, Lost: c.Lost + o.Lost, Duplicated: c.Duplicated + o.Duplicated, Pending: c.Pending + o.Pending,
		Attempts: c.Attempts + o.Attempts, Local: c.Local + o.Local, MinerWrites: c.MinerWrites + o.MinerWrites, TelemetryAcks: c.TelemetryAcks + o.TelemetryAcks}
}

// Trial is one trial's outcome.
type Trial struct {
	Scenario string `json:"scenario"`
	Index    int    `json:"index"`
	// Seed replays the trial: `hashfleet sim --scenario S --replay SEED` (or a Config with this Seed).
	Seed           int64             `json:"seed"`
	ScheduleDigest string            `json:"schedule_digest"`
	Faults         []string          `json:"faults"`
	Violations     oracle.Violations `json:"violations"`
	Failovers      []Seconds         `json:"failover_s,omitempty"`
	Recoveries     []Seconds         `json:"recovery_s,omitempty"`
	Commands       Commands          `json:"commands"`
	// AttemptKinds counts the forbidden commands delivered by kind (forged, out-of-order, …).
	AttemptKinds map[string]int `json:"forbidden_attempts_by_kind,omitempty"`
	// Duration is the trial's wall time; Error is set when the trial could not run.
	Duration Seconds   `json:"duration_s"`
	Error    string    `json:"error,omitempty"`
	Timeline *Timeline `json:"-"`
}

// Seconds is a duration written as seconds in JSON.
type Seconds time.Duration

// MarshalJSON writes seconds with millisecond precision.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%.3f", time.Duration(s).Seconds())), nil
}

// UnmarshalJSON reads seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// Summary is a distribution in seconds.
type Summary struct {
	N   int     `json:"n"`
	P50 Seconds `json:"p50_s"`
	P99 Seconds `json:"p99_s"`
	Max Seconds `json:"max_s"`
}

func summarize(ss []Seconds) Summary {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = time.Duration(s)
	}
	o := oracle.Summarize(ds)
	return Summary{N: o.N, P50: Seconds(o.P50), P99: Seconds(o.P99), Max: Seconds(o.Max)}
}

func (s Summary) String() string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f", time.Duration(s.P50).Seconds(), time.Duration(s.P99).Seconds(), time.Duration(s.Max).Seconds())
}

// Scenario is one scenario's trials.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Trials      int    `json:"trials"`
	// Violations counts the violations of every trial; ByInvariant splits them.
	Violations  int                      `json:"violations"`
	ByInvariant map[oracle.Invariant]int `json:"violations_by_invariant"`
	// FailedSeeds are the seeds of trials with a violation or an error.
	FailedSeeds []int64  `json:"failed_seeds"`
	Failover    Summary  `json:"failover"`
	Recovery    Summary  `json:"recovery"`
	Commands    Commands `json:"commands"`
	Errors      int      `json:"errors"`
	Runs        []Trial  `json:"runs"`
}

// Report is a whole `hashfleet sim` run.
type Report struct {
	Seed      int64      `json:"seed"`
	Command   string     `json:"command,omitempty"`
	Started   time.Time  `json:"started"`
	Scenarios []Scenario `json:"scenarios"`
}

// Add records trial t under scenario name (described by desc the first time).
func (r *Report) Add(name, desc string, t Trial) {
	i := slices.IndexFunc(r.Scenarios, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		r.Scenarios = append(r.Scenarios, Scenario{Name: name, Description: desc, ByInvariant: map[oracle.Invariant]int{}})
		i = len(r.Scenarios) - 1
	}
	s := &r.Scenarios[i]
	s.Trials++
	s.Runs = append(s.Runs, t)
	s.Violations += len(t.Violations)
	for inv, n := range t.Violations.ByInvariant() {
		s.ByInvariant[inv] += n
	}
	if len(t.Violations) > 0 || t.Error != "" {
		s.FailedSeeds = append(s.FailedSeeds, t.Seed)
	}
	if t.Error != "" {
		s.Errors++
	}
	s.Commands = s.Commands.Add(t.Commands)
	var fo, rec []Seconds
	for _, run := range s.Runs {
		fo = append(fo, run.Failovers...)
		rec = append(rec, run.Recoveries...)
	}
	s.Failover, s.Recovery = summarize(fo), summarize(rec)
}

// Violations is the total over every scenario (errors count as violations: a trial that could not run
// proved nothing).
func (r *Report) Violations() int {
	n := 0
	for _, s := range r.Scenarios {
		n += s.Violations + s.Errors
	}
	return n
}

// FailedSeeds lists "scenario seed" of every failed trial.
func (r *Report) FailedSeeds() []string {
	var out []string
	for _, s := range r.Scenarios {
		for _, seed := range s.FailedSeeds {
			out = append(out, fmt.Sprintf("%s %d", s.Name, seed))
		}
	}
	return out
}

// Worst returns the trial to draw: the one with the most violations, else the slowest failover or
// recovery, else the one with the most faults; nil when there is none.
func (r *Report) Worst() *Trial {
	var best *Trial
	score := func(t *Trial) (int, time.Duration, int) {
		var m time.Duration
		for _, s := range append(slices.Clone(t.Failovers), t.Recoveries...) {
			m = max(m, time.Duration(s))
		}
		return len(t.Violations), m, len(t.Faults)
	}
	for i := range r.Scenarios {
		for j := range r.Scenarios[i].Runs {
			t := &r.Scenarios[i].Runs[j]
			if t.Timeline == nil {
				continue
			}
			if best == nil {
				best = t
				continue
			}
			v1, d1, f1 := score(t)
			v0, d0, f0 := score(best)
			if v1 > v0 || (v1 == v0 && (d1 > d0 || (d1 == d0 && f1 > f0))) {
				best = t
			}
		}
	}
	return best
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: write JSON: %w", err)
	}
	return nil
}

// WriteTable writes one row per scenario: trials, violations, failover and recovery p50/p99/max in
// seconds, and the command counts.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttrials\tviolations\terrors\tfailover p50/p99/max s\trecovery p50/p99/max s\tissued\tacked\tsucceeded\tfailed\tlost\tduplicated\tpending\tforbidden\twrites\t")
	ss := slices.Clone(r.Scenarios)
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
	for _, s := range ss {
		c := s.Commands
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Name, s.Trials, s.Violations, s.Errors,
			s.Failover, s.Recovery, c.Issued, c.Acked, c.Succeeded, c.Failed, c.Lost, c.Duplicated, c.Pending, c.Attempts, c.MinerWrites)
	}
	return tw.Flush()
}
