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
//     epoch twice.
//
// Member crash: the provider's key expires (etcd lease TTL 3s), the others drop the member; grains it
// hosted re-activate on the next request on a live member and reload from the store; StreamLinks watching
// a grain that died attach to its next activation (with backoff), naming the highest seq their node
// reported; nodes whose stream was on the dead member reconnect to another member with backoff.
// Member shutdown: the gateway drains (ControlGoaway to its nodes), then the member leaves gracefully.
//
// Known limits: a StreamLink resolves the grain's PID (cluster.Get) inside Receive, which can block for the
// lookup (bounded by RequestTimeout) while a member is being dropped; Org and Miner grains are still
// single-member (server/grains), so operator API, device registry and command tracking stay on one member.
package cloudcluster
