package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// simChildEnv makes the test binary serve a simulated fleet (ServeSim) instead of running tests: the
// out-of-process simulators of these tests are this binary, re-executed.
const simChildEnv = "HASHFLEET_BENCH_SIM_CHILD"

// cloudChildEnv makes the test binary serve a cloud (ServeCloud) instead of running tests.
const cloudChildEnv = "HASHFLEET_BENCH_CLOUD_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(simChildEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := ServeSim(ctx, os.Args[1:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sim child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(cloudChildEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := ServeCloud(ctx, os.Args[1:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cloud child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		// protoactor's dead-letter throttle goroutine outlives its system by up to a second (see
		// actors/actortest.LeakOptions). memberlist's Shutdown (the failover suite's pair gossip) does not wait
		// for a probe in flight, which returns when the probe's interval ends, stretched up to 8× while the
		// member is degraded (see cluster/gossip's TestMain): so goleak gets ~8 s of retries.
		opts := []goleak.Option{
			goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
			goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
		}
		deadline := time.Now().Add(8 * time.Second)
		for {
			err := goleak.Find(opts...)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

// testOptions are options for a small, quick run whose simulators are this test binary, on an address
// range picked at random so that concurrent runs (another package's tests, a bench) do not collide.
func testOptions(t testing.TB, miners int) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Miners:       miners,
		SimCommand:   []string{exe},
		SimEnv:       []string{simChildEnv + "=1"},
		CloudCommand: []string{exe},
		CloudEnv:     []string{cloudChildEnv + "=1"},
		FirstNet:     100 + rand.IntN(140),
		Logger:       nil,
	}
}

// relaxed makes the schedule loose enough that a loaded CI machine (and -race) keeps it: 1s polls, a poll
// late only after 2.1s, a short window.
func relaxed(o Options) Options {
	o.Interval, o.Jitter, o.LateSlack = time.Second, 100*time.Millisecond, time.Second
	o.Warmup, o.Duration = 1500*time.Millisecond, 3*time.Second
	return o
}
