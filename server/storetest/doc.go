// Package storetest is the one test suite every cloud store passes: the embedded Badger store
// (server/store + server/lease.Badger) and the shared Postgres store (server/pgstore). A store is given to
// Run as a Suite whose Open makes a fresh, empty store for one subtest.
//
//	func TestBadgerSuite(t *testing.T) { storetest.Run(t, storetest.Suite{Open: openBadger}) }
//	func TestPostgresSuite(t *testing.T) { storetest.Run(t, storetest.Suite{Open: openPostgres}) }
//
// It covers server/store.Store (registry, telemetry, marks, commands, node queues and seq counters, audit,
// commissioning, reconciliation), server/store.PairStore (a node or device in one pair only, including many
// declarations of one device racing), server/store.Sites, server/lease.Store (compare-and-set, including
// many goroutines racing on one version), hostile ids, and durability across a reopen.
package storetest
