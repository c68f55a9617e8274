// Package rollout runs rolling firmware updates across a site: the miners in batches, in order; after each
// batch it waits for the update command to finish, lets the miners settle, and compares each updated miner's
// hashrate with its value before the update (the health gate). A batch that fails its gate stops the rollout,
// and the rollout reports which miners fell and by how much.
//
//	POST /api/v1/rollouts ─▶ Manager.Start ─▶ runner (one per rollout)
//	   for each batch: pre-hashrates ─▶ IssueCommand(firmware_update) ─▶ wait final ─▶ settle ─▶ post-hashrates
//	                   ─▶ Evaluate(pre, post, results, min ratio) ─▶ pass: next batch │ fail: stop and report
package rollout
