// Package sim runs simulated miners that speak the CGMiner API over real TCP sockets on loopback: the
// same bytes bmminer (Antminer S19/S21 family) sends, trailing NUL included, with joined commands
// ("summary+stats+pools"), write commands, and faults to inject. Node tests, `hashfleet demo` and
// `hashfleet minersim` use it.
//
//	Fleet ─┬─ Miner sim-0  listener 127.0.0.1:40001 ─ accept loop ─▶ one goroutine per request
//	       ├─ Miner sim-1  listener 127.0.0.1:40002          │
//	       └─ …                                              ▼
//	                                         state (per-miner mutex) ◀── sim clock (reboots, counters)
//
// State is a function of the sim clock: hashrate, temperatures, fans and power are nominal values with
// noise that changes every 5 s window, share counters grow with time spent hashing, and a restart keeps the
// miner unreachable for RebootDuration. With a clock.Fake, what a poll reads equals Snapshot exactly.
//
// Thousands of miners fit in one process: each costs one listener (one file descriptor) and one accept
// goroutine; request goroutines end with their connection.
package sim
