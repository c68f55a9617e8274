// Package history is the cloud's telemetry history: every miner's samples at full resolution for a recent
// window, 1-minute and 1-hour rollups for longer, the same rollups per group (the Fleet, and the sites,
// nodes and orgs SetGroups registers) maintained at ingest, and the queries the API charts from.
//
//	ingest (Org, after store.Apply) ──Append(samples)──▶ sort by time ─▶ per miner: rollup (pure, rollup.go)
//	                                                       │                 │ open minute ─close─▶ open hour ─close─┐
//	                                                       ▼ raw             ▼ closed minute      closed hour       │
//	                        one WriteBatch:  h/r/<miner>   h/m/<miner>      h/h/<miner>                           │
//	                                         h/gm/<group>  h/gh/<group>  ◀── group contributions (Fleet + groups) ◀┘
//	                                                       (read-modify-write, merged by addition)
//	API ─Series(miner)──────────▶ raw | minute | hour of the miner   + its open buckets (memory)
//	    ─Aggregate(miners, fn)──▶ Series of each miner, combined    (cost ∝ miners × steps)
//	    ─GroupTotals / FleetTotals▶ group minute | hour rollups      + members' open buckets (memory)
//	    ─Live / At──────────────▶ members' newest samples (memory) | the group bucket holding the time
//
// # What is kept
//
// A sample is reduced to 13 bytes: the 5 s hashrate (the average when the driver has no 5 s figure) and
// power as float32, the hottest board or chip temperature in 0.1 °C, the slowest fan, the state. A bucket
// (31 bytes) keeps the mean, minimum and maximum hashrate, mean power, hottest temperature, slowest fan, the
// newest state and when it was seen, the samples in it and its weight in minutes. Means are time-weighted at
// minute granularity: a minute is the mean of its samples, an hour the mean of its minutes, and a query step
// the weighted mean of its buckets, so a minute a node's spool downsampled to one sample weighs as much as a
// minute of twelve raw ones, and a 1-hour step reads the same from minutes as from the hour bucket.
//
// A group bucket (25 + 4 × states bytes) is the sum of its miners' bucket means (× their minutes), the most
// minutes any of them had, the hottest reading and the miners by newest state. Every field merges by addition
// (or max), so miners closing the same minute at different times, late after an outage, and the open buckets
// a query adds, all combine exactly. The group's hashrate over a bucket is sum / minutes: a miner silent for
// part of the hour counts as zero for that part, the same as in the minute rollups.
//
// # Key layout
//
// Ids end with 0x00 (no valid id contains it: miner ids may contain '/', so '/' cannot end them); times are
// unix milliseconds, 8 bytes big-endian, so each id's records sort by time and a range is one seek.
//
//	h/v                      format version (1)
//	h/i/<miner>              (empty)  the miners with history; recovery walks it. TTL: HourRetention + 24h
//	h/r/<miner>\x00<ts>      sample   13 B   TTL: RawRetention
//	h/m/<miner>\x00<start>   bucket   31 B   TTL: MinuteRetention
//	h/h/<miner>\x00<start>   bucket   31 B   TTL: HourRetention
//	h/gm/<group>\x00<start>  group    53 B   TTL: MinuteRetention   (the Fleet's group name is "")
//	h/gh/<group>\x00<start>  group    53 B   TTL: HourRetention
//	h/g/<group>              members  the group registry (SetGroups), no TTL
//
// # Retention: Badger TTL per resolution, not range deletes
//
// Every record is written with an expiry: its time plus its resolution's retention. Badger hides expired
// records from reads at once and drops them when compaction rewrites their table, so retention costs no
// writes, no scans and no tombstones. Deleting old ranges instead would mean, every pass, a seek per miner
// per resolution and a tombstone per expired record: at 20,000 miners polled every 5 s, 4,000 deletes a
// second on top of 4,000 writes, doubling write and compaction load to reclaim space compaction reclaims
// for free. Badger has no range delete (DropPrefix stops all writes while it runs, and a prefix is a miner,
// not a time range). The costs, accepted: a changed retention applies to records written from then on
// (queries apply the new one at once, see below); and Badger compares expiry with the wall clock, so the
// time to live is computed in business time at write (record time + retention − Config.Clock now) and added
// to the wall clock. A fake clock anywhere in time (tests, simulations) works; records of an accelerated
// simulation simply live longer on the wall clock. Queries cut off by business time: a record past its
// retention by Config.Clock is never returned, whether Badger has dropped it yet or not.
//
// # Rollups: incremental, recovered after a restart
//
// Each miner has an open minute and an open hour in memory (rollup.go). A sample in a later minute closes
// the open minute: it is written, folded into the open hour, and added to the group minute buckets of the
// Fleet and of every group the miner is in at that moment. A minute in a later hour closes the hour the
// same way. A miner that falls silent has its minute closed MinuteCloseGrace after the minute ends, and its
// hour HourCloseGrace after (Tick, or Append once a minute). Samples per miner must be newer than the newest
// one seen: a sample at or before it is a duplicate (node resends are harmless); a newer one whose minute was
// closed by grace is stored raw but not rolled up (late).
//
// Open buckets are never written. After a restart Open rebuilds each miner's from what is stored: the open
// hour from the minutes after its newest stored hour, the open minute from the raw samples after its newest
// stored minute, which is why MinuteCloseGrace < RawRetention and HourCloseGrace < MinuteRetention. In a
// batch each sample's raw record comes before the buckets it closes, and the group buckets come last (a
// WriteBatch commits in order); if a crash cut one short, recovery finds a minute with raw samples and a
// later one but no bucket and closes it again (likewise hours), and a group contribution is at worst lost,
// never counted twice. A write that fails leaves the in-memory state ahead of the disk; the next write
// rebuilds it from the disk first.
//
// # Groups and queries
//
// SetGroups registers groups (name → members; stored, so it survives a restart). Fleet ("") is every
// miner. GroupTotals and FleetTotals read the group's rollup buckets and add its members' open buckets from
// memory, so totals over any range cost the steps read plus one pass over the members in memory: no per-miner
// reads, whatever the fleet size. Aggregate takes any list of miners and reads each one's series: fine for
// tens to hundreds of miners, and the way to check the group rollups, but not for a 20,000-miner fleet.
//
// Series, Aggregate and GroupTotals choose the resolution from the step and the range (pickResolution): the
// coarsest whose buckets tile the step and whose retention reaches back to from; a step under a minute reads
// raw samples (groups: a minute at least). Steps are aligned to the unix epoch (UTC); points are returned
// for steps with data only.
//
// History writes are serialized by one lock held until the WriteBatch is flushed; queries hold it only to
// copy open buckets and open a Badger snapshot. Badger is opened small (badgerkv) in its own directory by
// Open, or shared by New: all keys start with "h/".
package history
