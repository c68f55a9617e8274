// Package bench measures hashfleet at fleet scale, against the project's simulators over real loopback
// sockets, and reports figures a reader can reproduce. `hashfleet bench SUITE… [--json FILE]` calls Run; the
// Go benchmarks of this package (BenchmarkPoll1k, BenchmarkBaselineNaive1k, BenchmarkBareLoop1k,
// BenchmarkFanout, BenchmarkIngest, BenchmarkSpool, BenchmarkFailover) run the same code at a size that
// finishes in about a minute or less.
//
//	Run(names) ─▶ Suite.Run ─▶ Result{params, metrics} ─▶ table on out, JSON file
//	                 │
//	                 ├─ startSite: simulator processes (≤ 15,000 miners each, each on its own 127.N.0.0/16,
//	                 │    every miner on its own address and port 4028), or an in-process sim.Fleet (≤ 5,000)
//	                 │
//	                 └─ measure(poller): start, warm up, then one window between two snapshots of
//	                      getrusage, VmRSS, the Go heap, the simulators' CPU and the machine's CPU
//	                      pollers:  node   the real fleet node, in-process, no cloud link
//	                                bare   a few workers looping over the cgminer driver, no actors
//	                                naive  a goroutine per miner, time.Sleep, net.Dial, encoding/json
//	                      every poll passes a recorder: latency histogram, per-miner gaps → lag
//
// Lag is counted per miner, so it is exact rather than an expectation: a miner owes a poll whenever
// PollInterval + PollJitter + LateSlack passes without one. lag_polls is what is owed at the end of the window
// plus what was owed and then paid late, late_polls the polls that came late, polls_due = polls_completed +
// lag_polls.
//
// Suites: poll and baseline (above); fanout, ingest and failover, which run the real split-mode cloud server
// in a process of its own (ServeCloud, started like the simulators) and enroll real split-mode nodes with it
// over its TLS gateway (cloudnode.go); spool, which drives node/spool on a real Badger directory. A new suite
// is one file with a type that implements Suite, and one line in Suites.
//
// CPU figures are getrusage(RUSAGE_SELF) of this process. With the simulators out of process (the default)
// that is the poller alone; with InProcessSim it includes the simulator, and the result says so.
package bench
