// Package cloudcluster makes several `hashfleet server` processes one cloud: a protoactor cluster
// (github.com/asynkron/protoactor-go/cluster) whose members find each other through etcd (production;
// protoactor's etcd provider) or protoactor's in-memory test provider (tests in one process), place grains
// with the disthash identity lookup, and share one PostgreSQL store (server/pgstore).
//
//	node ──ControlStream──▶ gateway (member A) ──AttachSession──▶ StreamLink (A)
//	                                                               │ ClusterAttachStream / NodeFrame
//	                                                               ▼
//	API (member B) ──Issue──▶ cluster.Request("node", id) ──▶ NodeGrain (member C, by identity)
//	                                                               │ AllocSeq + Enqueue (Postgres) first,
//	                                                               │ then ClusterDeliver to the link on A
//	                                                               ▼
//	                                         StreamLink (A) ──SendFrame──▶ NodeSession ──▶ node
//
// Kinds:
//   - "node" (NodeGrain): which member's StreamLink holds the node's newest stream, and the node's command
//     queue. Every seq comes from the shared counter (pgstore.AllocSeq, one atomic UPDATE … RETURNING), and
//     Enqueue refuses a seq already sent, so seqs are strictly increasing across members and activations.
//     Telemetry batches are applied once by batch seq (ApplyOnce), whichever member received them.
//   - "lease" (LeaseGrain): a pair's lease.LeaseActor; its decisions are compare-and-set on the stored
//     version plus a ledger with one holder per epoch (pgstore), so a double activation cannot issue an
//     epoch twice. A pair's members come from its declaration in the shared store (PairDirectory).
//   - "org" (OrgGrain): the operator's entry for a command to many miners: validates it (server/grains
//     rules), resolves owners from the shared registry, records it with every miner PENDING before sending
//     anything, then issues one command per owning node to its Node grain; idempotent per org and key in
//     the store (CreateOrgCommand), so a retry on any member returns the first command.
//   - "miner" (MinerGrain): one miner's results of org commands, one row per (command, miner) that only it
//     writes, conditionally on the row not being final; Node grains forward node acks and results to it
//     (commands_forward.go); it times itself out at the command's deadline and answers "get miner".
//     Grain-to-grain calls run off the mailboxes on the member's caller pool (commands_caller.go); every
//     member's CommandSweeper wakes Org grains whose commands are open past their deadline.
//
// Node authentication (secrets.go, auth.go, auth_actor.go): the members share the org's TLS CA, command
// keys and enrollment secret, sealed in Postgres under a key-encryption key each member is given
// (OpenSecrets creates each once; members starting together agree). Each member's gateway authenticates
// nodes as split mode does, over a registry on the shared store (Auth), so enrollment, challenges and
// sessions work whichever member each call reaches; the Node grains sign every command with the shared
// keys (Config.Signer); a revocation on any member ends the node's streams on every member (ClusterCutNode
// to each member's auth actor).
//
// Command keys (keys.go, keys_api.go, keys_http.go, keys_watcher.go): rotation and revocation on any member
// are a compare-and-set on the sealed key row; the change is queued to every confirmed node through its Node
// grain (announcements signed by the key they retire), and every member's KeyWatcher installs a newer row
// version within Config.KeyReload.
//
// Every member also runs a RetentionActor (retention.go) that keeps the telemetry history's daily partitions:
// created ahead, dropped past the retention, on the business clock; the store makes concurrent runs harmless.
//
// Member crash: the provider's key expires (etcd lease TTL 3s), the others drop the member; grains it
// hosted re-activate on the next request on a live member and reload from the store; StreamLinks watching
// a grain that died attach to its next activation (with backoff), naming the highest seq their node
// reported; nodes whose stream was on the dead member reconnect to another member with backoff.
// Member shutdown: the gateway drains (ControlGoaway to its nodes), then the member leaves gracefully.
//
// Known limits: a StreamLink resolves the grain's PID (cluster.Get) inside Receive, which can block for the
// lookup (bounded by RequestTimeout) while a member is being dropped; the operator API /api/v1, device
// registration and the single-member command tracker stay in server/grains on one member; org commands
// cannot carry pool or login passwords or firmware images yet.
package cloudcluster
