// Package testsvc starts throwaway external services for tests: a PostgreSQL server (Debian's `postgresql`)
// and an etcd member (Debian's `etcd-server`), each in its own temp directory on a free loopback port, and
// stops them when the test ends.
//
//	pg := testsvc.StartPostgres(t)     // initdb + postgres on 127.0.0.1:<free>, trust auth, fsync off
//	dsn := pg.NewDatabase(t)           // a fresh database per test (dropped on cleanup)
//	etcd := testsvc.StartEtcd(t)       // one etcd member on 127.0.0.1:<free>
//
// When a binary is missing the test is skipped with a message naming the Debian package to install, unless
// HASHFLEET_CI=1 (set by .ci/run, which installs the packages through .ci/services), where it fails.
//
// PostgreSQL refuses to run as root: as root the helper runs initdb and postgres as the `postgres` user that
// the Debian package creates, in a directory it owns.
package testsvc
