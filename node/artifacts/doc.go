// Package artifacts is the node's half of artifact transfer over the gateway (docs/GATEWAY.md, Artifacts):
// it fetches firmware images a command names (cloud→node) and puts log bundles a command asked for
// (node→cloud). Transfers are chunked, resume from the last byte held (download) or acknowledged (upload)
// after a dropped stream, are checked against the command's sha256, and are bounded per node.
//
//	Download: free-space check → Fetch(offset = bytes in partial/<sha>) → append → … drop → backoff → Fetch(offset) → sha256 → <sha>
//	Upload:   Put(begin) → ack(committed) → chunks from committed → … drop → backoff → Put(begin) → ack(committed) → … → done
package artifacts
