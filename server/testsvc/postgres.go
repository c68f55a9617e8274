package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgGlobs are where Debian installs the server binaries (not on PATH).
var pgGlobs = []string{"/usr/lib/postgresql/*/bin"}

// Postgres is a throwaway PostgreSQL server.
type Postgres struct {
	// Port on 127.0.0.1.
	Port int
	// User is the superuser (trust authentication on loopback).
	User string
	dir  string
	p    *proc
}

// DSN returns the connection string of database db.
func (pg *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pg.User, pg.Port, db)
}

// Log returns what the server printed so far.
func (pg *Postgres) Log() string { return pg.p.out.String() }

// StartPostgres starts a server for tb and stops it (removing its files) when tb ends. It skips tb when
// initdb/postgres are missing (fails under HASHFLEET_CI=1).
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	pg, stop, err := startPostgres()
	if errors.Is(err, errMissing) {
		missing(tb, "PostgreSQL server (initdb, postgres)", "postgresql")
	}
	if err != nil {
		tb.Fatalf("postgres: %v", err)
	}
	tb.Cleanup(stop)
	return pg
}

// errMissing: the binaries are not installed.
var errMissing = errors.New("not installed")

var shared struct {
	once sync.Once
	pg   *Postgres
	stop func()
	err  error
}

// SharedPostgres returns one server shared by every test of the package (each test makes its own
// databases with NewDatabase), started by the first caller; call StopShared from TestMain after m.Run.
func SharedPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	shared.once.Do(func() { shared.pg, shared.stop, shared.err = startPostgres() })
	if errors.Is(shared.err, errMissing) {
		missing(tb, "PostgreSQL server (initdb, postgres)", "postgresql")
	}
	if shared.err != nil {
		tb.Fatalf("postgres: %v", shared.err)
	}
	return shared.pg
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared.stop != nil {
		shared.stop()
	}
}

func startPostgres() (*Postgres, func(), error) {
	initdb, ok1 := lookBin("initdb", pgGlobs...)
	postgres, ok2 := lookBin("postgres", pgGlobs...)
	if !ok1 || !ok2 {
		return nil, nil, errMissing
	}
	dir, err := os.MkdirTemp("", "hashfleet-pg-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb refuses root: run as the Debian package's postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("the postgres system user: %w", errMissing)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	port, err := freePort()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	pg := &Postgres{Port: port, User: "hashfleet", dir: dir}
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		return c
	}
	if out, err := run(initdb, "-D", data, "-U", pg.User, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Own process group (Setpgid), so a test's kill of its children never reaches the server by accident.
	cmd := run(postgres, "-D", data, "-p", strconv.Itoa(pg.Port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	if pg.p, err = startProc(cmd); err != nil {
		cleanup()
		return nil, nil, err
	}
	stop := func() {
		pg.p.stop(10 * time.Second)
		cleanup()
	}
	if err := pg.waitReady(15 * time.Second); err != nil {
		log := pg.Log()
		stop()
		return nil, nil, fmt.Errorf("%w\n%s", err, log)
	}
	return pg, stop, nil
}

func (pg *Postgres) waitReady(d time.Duration) error {
	if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", pg.Port), d, pg.p.exited); err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err == nil {
			err = c.Ping(ctx)
			_ = c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %w", d, last)
}

// NewDatabase creates an empty database for tb, dropped when tb ends, and returns its DSN.
func (pg *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if err := pg.exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("postgres: create database: %v", err)
	}
	tb.Cleanup(func() { _ = pg.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	return pg.DSN(name)
}

func (pg *Postgres) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}
