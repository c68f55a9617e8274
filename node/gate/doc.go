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
// The Verifier of a node that talks to a cloud is the KeyringVerifier: an ed25519 signing.Keyring of the org's
// command keys, persisted in the node store. Key announcements and revocations arrive as commands signed by a
// trusted key: the gate prepares the change on a copy of the keyring, commits it with the seq mark and the
// audit record in one transaction (Store.CommitKeyCommand), then installs it, and answers SUCCEEDED or FAILED
// with the reason. InProcessVerifier (accept everything) remains for tests that exercise the rest of the gate.
//
// Local commands (local.go) pass the gate too: commands issued at the site (the local UI) are stamped
// (local_origin, HLC, lease epoch), persisted in the local command log before they run, run on the miners and
// reported to the cloud as EVENT_KIND_LOCAL_COMMAND events. Before a cloud command runs, Reconcile
// (reconcile.go) holds it (RESULT_CODE_CONFLICT) on every miner where a local action on the same field is
// newer than the command's local_watermark, except safety actions (stop, curtail), which run anyway.
//
// The gate writes to the store inside Receive on purpose: it is the serialisation point that makes "mark
// persisted before dispatch" hold, and one fsync per command is cheap next to a command's miner I/O.
package gate
