// Package inspect is a generic, read-only inspector for hashfleet's Badger stores (`hashfleet store inspect`).
// It knows nothing about any one store: each store package declares a Schema (its key prefixes, the protobuf
// type of each prefix's values, how to print and parse its keys, and what its summary shows), and the
// inspector tells a directory's kind from which schema recognises most of its keys.
//
//	DIR ──checks (no Badger yet)──▶ Badger, read-only ──every key once──▶ schema detection + prefix counts
//	      exists, not empty,          (or a recovered                          │
//	      MANIFEST magic, lock,        private copy)                           ▼
//	      clean shutdown                                   views: summary · prefixes · get KEY · scan PREFIX
//	                                                              · audit --tail N
//	                                                                 │ values: protobuf → protojson
//	                                                                 ▼ (unknown prefix → hex dump + note)
//	                                                      WriteSummary / WritePrefixes / WriteRecords, or WriteJSON
//
// It never writes to the directory: Badger is opened ReadOnly (no pid file, no log truncation, no
// compaction). What a read-only open cannot do gets a clear error before Badger is involved:
//
//   - a missing or empty directory, or one without a Badger MANIFEST: ErrNotBadger;
//   - a MANIFEST without Badger's magic bytes, or a store Badger fails to open: ErrCorrupt;
//   - a store a running process holds (Badger's directory lock): ErrLocked; the running node serves the same
//     views on its loopback admin endpoint;
//   - a store whose last process was killed (write-ahead log files left): ErrUnclean, unless
//     Config.RecoverCopy, which inspects a recovered copy in a temporary directory instead;
//   - a Badger store with no keys (ErrEmpty) or with keys no schema knows (ErrForeign).
package inspect
