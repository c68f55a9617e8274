// Package artifacts is the cloud's artifact store and the gateway's Artifacts service (docs/GATEWAY.md,
// Artifacts): firmware images the operator uploads (POST /api/v1/artifacts) and nodes fetch, and log bundles
// nodes put. Blobs are content-addressed under DataDir/artifacts/blobs/<sha256>; uploads from nodes grow in
// DataDir/artifacts/partial/ until the whole artifact arrived and its sha256 matched, so a dropped stream
// resumes from the last acknowledged offset.
//
//	operator --POST--> Store.Put --> blobs/<sha>
//	node <--Fetch(offset)-- Service (grant: node, command, sha) <-- blobs/<sha>
//	node --Put(begin, chunks)--> Service --> partial/<node>.<command>.<sha> --sha ok--> blobs/<sha>
package artifacts
