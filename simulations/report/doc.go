// Package report turns chaos-simulation trials into what a reader checks: a table per scenario on the
// terminal, a JSON report (a `scenarios` list with each scenario's trials, violations and timings) and an
// SVG timeline of one trial (node lifetimes and links, lease holders and epochs, faults, miner writes).
//
//	harness.RunTrial ─▶ Trial{seed, schedule digest, violations, failovers, recoveries, commands, Timeline}
//	                         │
//	Add(scenario, trial) ─▶ Report{Scenarios: [{name, trials, violations, failover/recovery summaries}]}
//	                         ├─ WriteTable(w)   one row per scenario
//	                         ├─ WriteJSON(w)
//	                         └─ Worst() ─▶ WriteSVG(w, trial)
//
// Everything here is plain data and formatting: no clock, no sockets.
package report
