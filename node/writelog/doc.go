// Package writelog records every write the node makes to a miner, tagged with the lease epoch it was made
// under, so that a warm-standby pair's fencing can be checked after the fact: compared with the miners' own
// write logs, no two nodes' writes to one miner may interleave.
//
//	MinerActor (each write: permit check → driver.Execute) ──Entry{node, miner, command, action, epoch,
//	                                                                 start, finish, code}──▶ Log
//	                                        Log = Memory (tests, simulations) | File (JSON lines, one per write)
//	                                                                             ▼
//	                             ReadFile / Overlaps / FirstStart / LastFinish (tests, chaos oracles)
//
// A write is recorded when it ends (its outcome known); a process killed during a write loses that one
// entry, which is why the miners' own logs are the other half of the proof.
package writelog
