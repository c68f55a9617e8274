// Package gate owns the CommandGate: every command from the cloud passes it before any miner sees it.
//
//	Uplink ──*pb.ControlCommand──▶ CommandGate
//	                                  │ 1. decide (pure): node id, Verifier (signature, key), lease epoch hook,
//	                                  │    seq vs the persisted high-water mark (REFUSED_SEQ, or DUPLICATE
//	                                  │    when the same seq+command+signature already ran), payload, ownership
//	                                  │ 2. Store: new mark + audit record in one fsynced commit (BEFORE
//	                                  │    dispatch); refusals: audit record only
//	                                  │ 3. CommandAck ──▶ Uplink (RUNNING, a REFUSED_* code, or DUPLICATE)
//	                                  │ 4. Dispatch ──▶ SiteSupervisor ──Execute──▶ MinerActors
//	                                  ▼
//	          *miner.Result ×N ──▶ aggregate ──CommandResultReport (partial every ReportInterval, final
//	                                  │         with done=true) ──▶ Uplink;  final report recorded by seq
//	                                  └──▶ TelemetryBatcher: every audit record as an EVENT_KIND_COMMAND_AUDIT event
//
// An authentic command with a fresh seq consumes the seq even when it is then refused for ownership or a bad
// payload: the outcome is recorded under the seq, so a re-send gets DUPLICATE with that outcome. Commands that
// fail authentication (wrong node, bad signature or key, replayed or old seq) never move the mark.
//
// The gate writes to the store inside Receive on purpose: it is the serialisation point that makes "mark
// persisted before dispatch" hold, and one fsync per command is cheap next to a command's miner I/O.
package gate
