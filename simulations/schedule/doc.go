// Package schedule turns a seed into a fault schedule: which fault happens when, to which node, site or
// miner, for how long, with which parameters. The same Config (seed included) always gives the same
// Schedule, on any machine, so a failing trial is replayed from the seed the report prints.
//
//	Config{Seed, Duration, Weights, Topology, …} ──Generate──▶ Schedule{Faults: [{At, Duration, Kind, Target, params}…]}
//	                                                              │ String(): a table for the report and the log
//	                                                              │ Digest(): a short hash, to show two runs had one schedule
//	harness: at f.At inject f (resolving Role to a node then), at f.End() heal it; run the oracles
//
// Targets name what the topology names. In a warm-standby pair a node fault names a Role (active or
// standby), not a node: which node is active is only known when the fault fires, and the schedule must
// not depend on what happened in the run. The harness resolves the role at f.At.
//
// A trial has a Warmup with no fault (the site comes up, the lease is granted) and a Settle at the end with
// no fault active (everything heals, reconnects and backfills before the oracles look). In between, fault
// starts are spaced by a draw from [MinGap, MaxGap]; at most MaxConcurrent faults are active at once (one
// by default: each heals, then a gap, then the next), and two faults on one site never overlap, nor two on
// the cloud, so each fault's effect can be told apart.
//
// Scenarios are named weightings ("kill-active", "wan-site", "gateway-chaos", "mixed", …) for
// `hashfleet sim --scenario NAME`; TrialSeed derives each trial's seed from the run's seed.
package schedule
