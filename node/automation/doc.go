// Package automation owns node-local site automation: rules, schedules and trusted pools from a signed per-site
// policy, kept in the node's store and run on the node, so they keep working with the WAN down.
//
//	cloud: Policy ──SignPolicy (org command key)──▶ SignedPolicy{body, key_id, signature}
//	                                                   │ carried in a signed command (or given at the local UI)
//	                                                   ▼
//	InstallPolicy ──▶ AutomationActor ── VerifyPolicy (node's Keyring) ── Replaces (newer only)
//	                        │ PolicyStore.SavePolicy, then apply; at start: LoadPolicy + VerifyStoredPolicy
//	                        │ PoolGuard ◀── CommandGate asks AllowsPools before any UPDATE_POOLS
//	                        │
//	      tick / schedule boundary (injected clock)
//	                        ▼
//	   Evaluate(policy, state, observations, now) ── pure ──▶ []Action (each naming its rule)
//	        │ Commander.Dispatch (curtail/stop/resume/reboot) ──▶ MinerActors
//	        │ curtail.StartEvent / StopEvent (schedules) ──────▶ CurtailActor
//	        └ Auditor.Audit(AuditRecord{actor "automation:<rule>", local_origin}) ──▶ store + events (spooled)
//
// Rules (see Policy): overheat (curtail or stop above a temperature, resume below it minus a hysteresis),
// hashrate drop (reboot after a sustained drop against the miner's own reference, with a per-miner rate limit,
// a site-wide cap on simultaneous reboots counting every rebooting miner, and suppression of a site-wide drop,
// whose cause is rarely the miners), unreachable-for-long (an audited event to the operator), schedules (a
// daily or weekly window in an IANA time zone, correct across daylight-saving changes, running a curtailment
// event with a kW target), and trusted pools (TrustedPools.Allows: strict URL parsing against exact or
// wildcard host patterns with scheme and port).
//
// The policy is signed over its exact JSON bytes (PolicyBytes, context "hashfleet-policy-v1") with the same
// per-org command keys as commands (messages/signing), and verified against the node's Keyring: an unsigned
// or wrongly signed policy, one from another org or site, or one not newer than the installed one, is refused
// with a clear error. The separate signature (beyond the carrying command's) lets the node re-verify the
// policy it reads back from its own store, and lets one signed policy reach every node of a site by any path.
package automation
